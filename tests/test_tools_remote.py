"""Remote tool services: one gateway (``edge``) whose ``ocr`` and ``yolo`` deployments have
an ``api_base`` calls another gateway (``gpu``) that runs them locally; and the one-line
config errors of a local tool whose runtime is missing."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import pytest

from gateway.config import ConfigError, validate
from tests.conftest import MASTER_KEY, GatewayFactory
from tests.fakes.serve import free_port

pytest.importorskip("onnxruntime", reason="the tools extra: pip install -e '.[tools]'")
pytest.importorskip("rapidocr_onnxruntime", reason="the tools extra")
pytest.importorskip("skimage", reason="the dev extra: scikit-image's photographs")

from tests.tool_files import photograph, scanned_page, text_pdf

EDGE_KEY = "sk-edge-master"


@pytest.fixture
def gateways(make_gateway: GatewayFactory) -> tuple[str, str]:
    gpu = make_gateway({"models": [
        {"name": "yolo", "provider": "yolo", "threads": 1},
        {"name": "ocr", "provider": "ocr"},
    ]})
    edge = make_gateway({"models": [
        {"name": "detector", "provider": "yolo", "model": "yolo", "api_base": gpu,
         "api_key": MASTER_KEY},
        {"name": "reader", "provider": "ocr", "model": "ocr", "api_base": f"{gpu}/v1/",
         "api_key": MASTER_KEY},
    ]}, master_key=EDGE_KEY)
    return edge, gpu


def post(url: str, tool: str, data: bytes, key: str, query: str = "",
         **fields: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/tools/{tool}{query}", headers={"Authorization": f"Bearer {key}"},
                      files={"file": ("upload", data, "application/octet-stream")},
                      data={k: str(v) for k, v in fields.items()}, timeout=120)


def test_detection_through_a_remote_gateway(gateways: tuple[str, str]) -> None:
    edge, gpu = gateways
    photo = photograph("coffee")
    fields = {"confidence": 0.2, "classes": "cup,spoon", "max_detections": 5}
    remote = post(edge, "detect", photo, EDGE_KEY, model="detector", **fields)
    local = post(gpu, "detect", photo, MASTER_KEY, model="yolo", **fields)
    assert remote.status_code == 200, remote.text
    assert remote.json() == local.json()
    assert {o["label"] for o in remote.json()["objects"]} <= {"cup", "spoon"}
    assert "cup" in {o["label"] for o in remote.json()["objects"]}
    png = post(edge, "detect", photo, EDGE_KEY, query="?format=png", model="detector")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content == post(gpu, "detect", photo, MASTER_KEY, query="?format=png").content


def test_ocr_through_a_remote_gateway(gateways: tuple[str, str]) -> None:
    edge, gpu = gateways
    pdf = text_pdf([["Quarterly report"]], scanned_after=[scanned_page(["Revenue grew"])])
    remote = post(edge, "ocr", pdf, EDGE_KEY, query="?detail=lines")  # the default model
    assert remote.status_code == 200, remote.text
    assert remote.json() == post(gpu, "ocr", pdf, MASTER_KEY, query="?detail=lines").json()
    assert [p["method"] for p in remote.json()["pages"]] == ["text", "ocr"]
    assert remote.json()["pages"][1]["lines"]


def test_remote_errors_reach_the_client_as_the_remote_gave_them(
        gateways: tuple[str, str]) -> None:
    edge, _ = gateways
    bad = post(edge, "detect", b"not an image at all", EDGE_KEY, model="detector")
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "file"
    assert "neither a PDF nor an image" in bad.json()["error"]["message"]
    encrypted = post(edge, "ocr", text_pdf([["x"]], encrypt="pw"), EDGE_KEY)
    assert encrypted.status_code == 400 and "encrypted" in encrypted.json()["error"]["message"]
    assert post(edge, "detect", photograph("chelsea"), EDGE_KEY).status_code == 200


def test_a_remote_that_is_down_is_a_503(make_gateway: GatewayFactory) -> None:
    edge = make_gateway({"models": [
        {"name": "detector", "provider": "yolo", "api_base": f"http://127.0.0.1:{free_port()}",
         "retries": 0},
    ]})
    response = post(edge, "detect", photograph("chelsea"), MASTER_KEY)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"


def test_a_remote_that_rejects_the_key_is_a_502(gateways: tuple[str, str],
                                                 make_gateway: GatewayFactory) -> None:
    _, gpu = gateways
    edge = make_gateway({"models": [
        {"name": "detector", "provider": "yolo", "api_base": gpu, "api_key": "sk-wrong",
         "retries": 0, "model": "yolo"},
    ]})
    response = post(edge, "detect", photograph("chelsea"), MASTER_KEY)
    assert response.status_code == 502
    assert "credentials" in response.json()["error"]["message"]


# -- config: a local tool needs its runtime; a remote one does not -----------------------------


def test_a_local_detector_without_onnxruntime_is_one_line_naming_the_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if it were not installed
    with pytest.raises(ConfigError) as raised:
        validate({"models": [{"name": "yolo", "provider": "yolo"}]})
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("models.yaml: models[0]:")
    assert "pip install -e '.[tools]'" in message and "onnxruntime" in message
    remote = validate({"models": [{"name": "yolo", "provider": "yolo",
                                   "api_base": "http://gpu-box:8000"}]})
    assert remote.models[0].provider == "yolo"


def test_tool_config_errors() -> None:
    def problem(entry: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as raised:
            validate({"models": [entry]})
        return str(raised.value)

    assert "languages: 'xyz' is not installed for tesseract" in problem(
        {"name": "o", "provider": "ocr", "engine": "tesseract", "languages": ["xyz"]})
    assert "exclude each other" in problem(
        {"name": "y", "provider": "yolo", "path": __file__, "api_base": "http://x"})
    assert "no such file" in problem({"name": "y", "provider": "yolo", "path": "/nope.onnx"})
    assert "unknown key" in problem({"name": "o", "provider": "ocr", "colour": "red"})
    assert "engine" in problem({"name": "o", "provider": "ocr", "engine": "paddle"})


def test_a_remote_that_is_down_falls_back(make_gateway: GatewayFactory) -> None:
    edge = make_gateway({"models": [
        {"name": "detector", "provider": "yolo", "api_base": f"http://127.0.0.1:{free_port()}",
         "retries": 0, "fallbacks": ["local-yolo"]},
        {"name": "local-yolo", "provider": "yolo", "threads": 1},
    ]})
    response = post(edge, "detect", photograph("chelsea"), MASTER_KEY, model="detector")
    assert response.status_code == 200, response.text
    assert response.json()["objects"][0]["label"] == "cat"


def test_ocr_path_must_hold_the_engine_files(tmp_path: Any) -> None:
    def problem(entry: dict[str, Any]) -> str:
        with pytest.raises(ConfigError) as raised:
            validate({"models": [{"name": "o", "provider": "ocr", **entry}]})
        return str(raised.value)

    assert "no *det*.onnx and *rec*.onnx" in problem({"path": str(tmp_path)})
    assert "no kor.traineddata" in problem({"path": str(tmp_path), "engine": "tesseract",
                                            "languages": ["kor"]})
    assert "not a folder" in problem({"path": __file__})
