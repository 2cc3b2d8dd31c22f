"""What a tool developer sees first: ``help(Uploader)`` shows every option, with its default."""

from __future__ import annotations

import inspect
import pydoc

import pytest

from steadypost import AsyncUploader, Uploader
from steadypost._base import BaseUploader

OPTIONS = [p for p in inspect.signature(BaseUploader.__init__).parameters.values()
           if p.name != "self"]  # fmt: skip


@pytest.mark.parametrize("cls", [Uploader, AsyncUploader])
def test_help_shows_every_option_with_its_default_and_what_it_does(cls: type) -> None:
    text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
    signature = inspect.signature(cls)
    assert [p.name for p in signature.parameters.values()] == [p.name for p in OPTIONS]
    for option in OPTIONS:
        shown = signature.parameters[option.name]
        assert shown.kind is inspect.Parameter.KEYWORD_ONLY
        assert shown.default is option.default
        assert f"``{option.name}``" in text, f"{option.name} is not documented in help()"
    [head] = [line for line in text.splitlines() if line.startswith(f" |  {cls.__name__}(*, ")]
    assert "ClientT" not in head  # the real types, not the base's type variables
    assert "SleepT" not in head
    assert ("httpx.AsyncClient" if cls is AsyncUploader else "httpx.Client") in head
    assert "**" not in head  # explicit keywords, no **options


def test_a_wrong_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="chunksize"):
        Uploader(chunksize=1)  # type: ignore[call-arg]
