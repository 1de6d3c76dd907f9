FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY wire ./wire
COPY config ./config
COPY config/models.example.yaml ./models.yaml
RUN pip install --no-cache-dir .
EXPOSE 8000
# Set GATEWAY_MASTER_KEY (auth on) and, for several replicas, REDIS_URL.
# Mount your own routing table over /app/models.yaml or point GATEWAY_CONFIG at it.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
