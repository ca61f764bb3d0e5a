"""A chat model that answers LangChain's ``LLMGraphTransformer`` from a script: the graph it
"extracts" from each text is given in advance (no model, no network), in the shape a
tool-calling model returns, so the transformer itself builds the ``GraphDocument``s (ids in
title case, types capitalised, relationship types upper snake case, property keys camelCase)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

__all__ = ["ScriptedGraphModel", "node", "prop", "rel"]


def prop(key: str, value: str) -> dict[str, str]:
    """A property as the transformer's schema asks a model for one (values are strings)."""
    return {"key": key, "value": value}


def node(id: str, type: str, *props: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": id, "type": type}
    if props:
        out["properties"] = list(props)
    return out


def rel(
    source: tuple[str, str], type: str, target: tuple[str, str], *props: dict[str, str]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "source_node_id": source[0],
        "source_node_type": source[1],
        "target_node_id": target[0],
        "target_node_type": target[1],
        "type": type,
    }
    if props:
        out["properties"] = list(props)
    return out


class ScriptedGraphModel(BaseChatModel):
    """``answers`` maps a text to the graph a model would extract from it (``nodes``,
    ``relationships``); a text not in the script yields an empty graph.

    With structured output (the transformer's default) the answer is validated into the
    transformer's own schema, as a tool-calling model's would be. Without it (the transformer's
    ``ignore_tool_usage=True``), the answer is the prompt-based path's JSON list of
    ``head``/``relation``/``tail`` triples."""

    answers: Mapping[str, Mapping[str, Any]]

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def _answer(self, prompt_text: str) -> Mapping[str, Any]:
        # The longest scripted text the prompt holds (one text may contain another).
        for text in sorted(self.answers, key=len, reverse=True):
            if text in prompt_text:
                return self.answers[text]
        return {"nodes": [], "relationships": []}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        answer = self._answer("\n".join(str(m.content) for m in messages))
        triples = [
            {
                "head": r["source_node_id"],
                "head_type": r["source_node_type"],
                "relation": r["type"],
                "tail": r["target_node_id"],
                "tail_type": r["target_node_type"],
            }
            for r in answer.get("relationships", [])
        ]
        message = AIMessage(content=json.dumps(triples))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def with_structured_output(  # type: ignore[override]
        self, schema: type[BaseModel], *, include_raw: bool = False, **kwargs: Any
    ) -> Runnable[PromptValue, Any]:
        def answer(prompt: PromptValue) -> Any:
            parsed = schema.model_validate(self._answer(prompt.to_string()))
            if not include_raw:
                return parsed
            return {"raw": AIMessage(content=""), "parsed": parsed, "parsing_error": None}

        return RunnableLambda(answer)
