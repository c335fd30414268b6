"""The OpenAI request bodies ``locollm serve`` accepts, as pydantic models (its OpenAPI schema).

Every field OpenAI defines for ``/v1/completions`` and ``/v1/chat/completions`` is either
honoured or refused with a 400 naming it; a field OpenAI does not define is refused too
(``extra="forbid"``), so nothing a client sends is silently ignored. Ranges are OpenAI's.
locollm's one extension is ``adapters``: a list of ``{"name", "scale"}`` applied together.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_N = 8  # choices per request


class APIError(Exception):
    """A request the server refuses, rendered as OpenAI's ``{"error": {...}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)
        self.headers = headers or {}

    def body(self) -> dict:
        """The JSON error object."""
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(_Strict):
    """``stream_options``: ``include_usage`` adds a last chunk with the token counts."""

    include_usage: bool = False


class AdapterWeight(_Strict):
    """One adapter of a set (locollm's extension field ``adapters``)."""

    name: str = Field(min_length=1)
    scale: float = Field(1.0, ge=-4.0, le=4.0)


class JsonSchemaFormat(_Strict):
    """``response_format.json_schema``: the schema the answer must follow."""

    name: str = Field("response", min_length=1, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    """``response_format``: free text, any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _needs_schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("'json_schema' is required when type is 'json_schema'")
        return self


Stop = str | Annotated[list[Annotated[str, Field(min_length=1)]], Field(max_length=4)]

# Fields OpenAI defines that locollm cannot honour: refused unless absent or empty.
UNSUPPORTED = ("logprobs", "top_logprobs", "echo", "suffix", "best_of", "tools", "tool_choice",
               "functions", "function_call", "parallel_tool_calls", "audio", "modalities",
               "prediction", "reasoning_effort", "web_search_options", "service_tier",
               "store", "metadata")


class _Generation(_Strict):
    """Fields both endpoints share."""

    model: str = Field(min_length=1, examples=["base", "auto"],
                       description="a model id from /v1/models, 'auto', or adapters joined "
                       "with '+' (e.g. 'math+units'); 'base' is the bare base")
    max_tokens: int | None = Field(None, ge=1, le=1 << 20)
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, ge=0.0, le=1.0)
    n: int = Field(1, ge=1, le=MAX_N)
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Stop | None = None
    seed: int | None = Field(None, ge=-(1 << 63), lt=1 << 63)
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, Annotated[float, Field(ge=-100.0, le=100.0)]] | None = None
    user: str | None = Field(None, description="an end-user id (not used for generation)")
    adapters: list[AdapterWeight] | None = Field(
        None, max_length=8, description="locollm: adapters applied together with their "
        "scales; 'model' must then be the base (or 'base')")

    @model_validator(mode="before")
    @classmethod
    def _refuse_unsupported(cls, data: Any) -> Any:
        """OpenAI fields locollm cannot honour: a 400 naming the field, unless it is sent
        empty (null, false, [] or {}; best_of 1), as some clients do."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in UNSUPPORTED:
            if name in data:
                value = data.pop(name)
                if value not in (None, False, [], {}) and not (name == "best_of" and value == 1):
                    raise APIError(400, f"'{name}' is not supported by locollm serve",
                                   param=name)
        return data

    @field_validator("logit_bias")
    @classmethod
    def _token_ids(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        for key in value or {}:
            if not key.isdigit():
                raise ValueError(f"logit_bias keys are token ids, got {key!r}")
        return value

    @model_validator(mode="after")
    def _stream_options_need_stream(self) -> _Generation:
        if self.stream_options is not None and not self.stream:
            raise APIError(400, "'stream_options' needs 'stream': true", param="stream_options")
        return self

    def stops(self) -> tuple[str, ...]:
        """The stop strings as a tuple."""
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def token_bias(self) -> dict[int, float]:
        """``logit_bias`` with integer token ids."""
        return {int(k): v for k, v in (self.logit_bias or {}).items()}


class CompletionRequest(_Generation):
    """``POST /v1/completions``: a raw prompt, continued as it is."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"model": "base", "prompt": "The capital of France is", "max_tokens": 8}]})

    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]

    def text(self) -> str:
        """The prompt (a list of one string is accepted, as OpenAI clients send)."""
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class TextPart(_Strict):
    """A text content part of a chat message."""

    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    """One message of a conversation."""

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class ChatRequest(_Generation):
    """``POST /v1/chat/completions``: a whole conversation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"model": "base", "max_tokens": 8,
         "messages": [{"role": "user", "content": "What is 47 + 35?"}]}]})

    messages: list[ChatMessage] = Field(min_length=1, max_length=512)
    max_completion_tokens: int | None = Field(None, ge=1, le=1 << 20)
    response_format: ResponseFormat | None = None

    def limit(self) -> int | None:
        """``max_completion_tokens``, else ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens
