"""YAML documents read the way callsweep's data files need: every scalar as text, every mapping
knowing the line it starts on.

Plain YAML 1.1 (PyYAML's SafeLoader) turns `0x1fffff` into 2097151, `no` into False and `10`
into an int; an exception value written unquoted would silently stop matching the keyword it
names. Here a plain scalar stays the text written (only `~`, `null` and an empty value are
null), as TOML would require it to be quoted. Duplicate keys, which PyYAML resolves silently to
the last one, are refused.
"""

from __future__ import annotations

import yaml

_NULL_TAG = "tag:yaml.org,2002:null"
_MAP_TAG = "tag:yaml.org,2002:map"


class LocatedDict(dict):
    """A YAML mapping, with the 1-based line it starts on (for error messages)."""

    line: int = 0


class YamlTextError(ValueError):
    """A document that is not valid YAML; `line` is 1-based where PyYAML gives a place."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.line = line
        super().__init__(message if line is None else f"line {line}: {message}")


class _TextLoader(yaml.SafeLoader):
    pass


# Keep only the null resolver: every other plain scalar is a string.
_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag == _NULL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _located_mapping(loader: _TextLoader, node: yaml.MappingNode):
    data = LocatedDict()
    data.line = node.start_mark.line + 1
    yield data
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    data.update(loader.construct_mapping(node, deep=True))


_TextLoader.add_constructor(_MAP_TAG, _located_mapping)


def load_text_yaml(text: str) -> object:
    """The one document in `text`; YamlTextError with the line of the problem otherwise."""
    try:
        return yaml.load(text, Loader=_TextLoader)  # a SafeLoader subclass: no objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlTextError(problem or str(exc), mark.line + 1 if mark else None) from exc
    except yaml.YAMLError as exc:
        raise YamlTextError(str(exc)) from exc
