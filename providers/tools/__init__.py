"""Tool backends beyond chat: speech to text, OCR, object detection, images."""
