"""OpenAI message content parts → Gemini `parts` (§5.1): text, images, audio and files.

Media go inline (`inlineData`) when the client sent them as data URLs; any other URL becomes
`fileData` for Gemini to fetch (Files API URIs; `gs://` on Vertex). Nothing is downloaded here:
the adapter does no I/O. An OpenAI `file_id` means nothing to Google and cannot be sent.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import urlsplit

import msgspec

from keyrail_common.failures import FailureClass
from keyrail_workers.adapters.base import UntranslatableRequest


class TextPart(msgspec.Struct, tag_field="type", tag="text"):
    text: str


class RefusalPart(msgspec.Struct, tag_field="type", tag="refusal"):
    refusal: str


class _ImageURL(msgspec.Struct):
    url: str


class ImagePart(msgspec.Struct, tag_field="type", tag="image_url"):
    image_url: _ImageURL


class _InputAudio(msgspec.Struct):
    data: str
    format: str


class AudioPart(msgspec.Struct, tag_field="type", tag="input_audio"):
    input_audio: _InputAudio


class _File(msgspec.Struct):
    file_data: str | None = None
    file_id: str | None = None


class FilePart(msgspec.Struct, tag_field="type", tag="file"):
    file: _File


ContentPart = TextPart | RefusalPart | ImagePart | AudioPart | FilePart
Content = str | list[ContentPart] | None


def _inline(data_url: str, where: str) -> dict[str, Any]:
    header, comma, data = data_url.removeprefix("data:").partition(",")
    mime_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not mime_type:
        raise UntranslatableRequest(f"{where} must be a base64 data URL (data:<type>;base64,...)", where)
    return {"inlineData": {"mimeType": mime_type, "data": data}}


def _media(url: str, where: str) -> dict[str, Any]:
    if url.startswith("data:"):
        return _inline(url, where)
    file_data = {"fileUri": url}
    mime_type = mimetypes.guess_type(urlsplit(url).path)[0]
    if mime_type:
        file_data["mimeType"] = mime_type
    return {"fileData": file_data}


def _part(part: ContentPart, where: str) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, RefusalPart):
        return {"text": part.refusal}
    if isinstance(part, ImagePart):
        return _media(part.image_url.url, f"{where}.image_url.url")
    if isinstance(part, AudioPart):
        audio = part.input_audio
        return {"inlineData": {"mimeType": f"audio/{audio.format}", "data": audio.data}}
    if part.file.file_data:
        return _inline(part.file.file_data, f"{where}.file.file_data")
    raise UntranslatableRequest(
        f"{where}.file: Gemini cannot read OpenAI file ids; send the file as file_data",
        f"{where}.file",
        FailureClass.UNSUPPORTED,
    )


def content_parts(content: Content, where: str) -> list[dict[str, Any]]:
    """Every part of a user message (empty texts left out: Gemini rejects them)."""
    if isinstance(content, str):
        return [{"text": content}] if content else []
    return [_part(part, f"{where}[{i}]") for i, part in enumerate(content or ()) if not _empty(part)]


def text_of(content: Content, where: str) -> str:
    """The text of a message that may only hold text (system, assistant, tool)."""
    if isinstance(content, str) or content is None:
        return content or ""
    texts: list[str] = []
    for i, part in enumerate(content):
        if isinstance(part, TextPart):
            texts.append(part.text)
        elif isinstance(part, RefusalPart):
            texts.append(part.refusal)
        else:
            raise UntranslatableRequest(
                f"{where}[{i}]: this message may hold only text parts", f"{where}[{i}]"
            )
    return "".join(texts)


def _empty(part: ContentPart) -> bool:
    return isinstance(part, TextPart) and not part.text
