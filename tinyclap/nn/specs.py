"""Build specs: how to rebuild an object that an hparams file declared with ``!new:``.

A student declared in yaml (``student: !new:my.module.TinyCNN {n_mels: 64}``)
is saved with its weights and a *build spec*, ``{"class": "my.module.TinyCNN",
"args": [], "kwargs": {"n_mels": 64}}``, so that evaluation, pruning and export
rebuild it with no change to tinyclap's code. Specs are plain JSON-like data:
constructor arguments that are themselves ``!new:`` objects nest as specs.

:func:`recording_constructions` is the one place that hooks hyperpyyaml: while
it is active, every ``!new:`` object gets its spec recorded.

Example
-------
>>> import io
>>> from hyperpyyaml import load_hyperpyyaml
>>> text = "m: !new:torch.nn.Linear {in_features: 3, out_features: 2}"
>>> with recording_constructions():
...     hp = load_hyperpyyaml(io.StringIO(text))
>>> spec = spec_of(hp["m"])
>>> spec
{'class': 'torch.nn.Linear', 'args': [], 'kwargs': {'in_features': 3, 'out_features': 2}}
>>> build(spec).weight.shape
torch.Size([2, 3])
"""

import inspect
import pydoc
import weakref

import hyperpyyaml.core

from tinyclap._compat import hyperpyyaml_hook

_SPECS = weakref.WeakKeyDictionary()  # object -> spec (objects that accept weak references)
_PLAIN = (bool, int, float, str, type(None))


class SpecError(ValueError):
    """An object has no build spec, or a spec cannot be built."""


def _to_spec_value(value, where):
    """A constructor argument as spec data: plain values, lists, dicts or nested specs."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_spec_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {str(k): _to_spec_value(v, f"{where}[{k}]") for k, v in value.items()}
    try:
        return {"__spec__": spec_of(value)}
    except SpecError:
        raise SpecError(
            f"{where}: a {type(value).__name__} argument cannot be recorded; give the "
            "constructor plain values (numbers, strings, lists) or !new: objects"
        ) from None


def _record(obj, callable_string, args, kwargs):
    try:
        spec = {
            "class": callable_string,
            "args": _to_spec_value(list(args), f"{callable_string} args"),
            "kwargs": _to_spec_value(dict(kwargs), f"{callable_string} kwargs"),
        }
    except SpecError as err:  # keep the reason: spec_of() reports it if asked
        spec = err
    try:
        _SPECS[obj] = spec
    except TypeError:  # objects without weak references (ints, ...) are not students
        pass


def _recording_construct_object(loader, callable_string, node):
    """Hyperpyyaml's ``!new:`` constructor, recording the arguments it used."""
    callable_ = pydoc.locate(callable_string)
    if callable_ is None:
        raise ImportError(f"There is no such class as {callable_string}")
    if not inspect.isclass(callable_):
        raise ValueError(f"!new:{callable_string} should be a class, but is {callable_}")
    args, kwargs = hyperpyyaml.core._load_node(loader, node)
    try:
        obj = callable_(*args, **kwargs)
    except TypeError as e:
        e.args = (f"Invalid argument to class {callable_string}", *e.args)
        raise
    _record(obj, callable_string, args, kwargs)
    return obj


def recording_constructions():
    """Record the build spec of every ``!new:`` object hyperpyyaml builds meanwhile.

    A context manager (:func:`tinyclap._compat.hyperpyyaml_hook`).
    """
    return hyperpyyaml_hook("_construct_object", _recording_construct_object)


def spec_of(obj):
    """The build spec of ``obj``: recorded from yaml, or its own ``build_spec()``.

    Classes built in Python (not from yaml) can describe themselves with a
    ``build_spec()`` method returning the same dict.

    Raises
    ------
    SpecError
        If ``obj`` was not built from yaml while recording and has no
        ``build_spec()``.
    """
    try:
        spec = _SPECS.get(obj)
    except TypeError:
        spec = None
    if isinstance(spec, SpecError):
        raise spec
    if spec is not None:
        return spec
    if hasattr(obj, "build_spec"):
        return obj.build_spec()
    raise SpecError(
        f"no build spec for a {type(obj).__module__}.{type(obj).__qualname__}: declare it "
        "with !new: in the hparams file, or give the class a build_spec() method"
    )


def _from_spec_value(value):
    if isinstance(value, list):
        return [_from_spec_value(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__spec__"}:
            return build(value["__spec__"])
        return {k: _from_spec_value(v) for k, v in value.items()}
    return value


def build(spec):
    """Build the object a spec describes (importing its class).

    Raises
    ------
    SpecError
        If the class cannot be imported or rejects the arguments.
    """
    cls = pydoc.locate(spec["class"])
    if cls is None or not inspect.isclass(cls):
        raise SpecError(f"cannot import class {spec['class']!r} (is its package installed?)")
    try:
        obj = cls(*_from_spec_value(spec.get("args", [])), **_from_spec_value(spec["kwargs"]))
    except TypeError as err:
        raise SpecError(f"{spec['class']}: cannot rebuild with {spec['kwargs']}: {err}") from err
    _record(obj, spec["class"], _from_spec_value(spec.get("args", [])), spec["kwargs"])
    return obj


def _yaml_value(value, indent):
    """One spec value as YAML: JSON for plain data, a tagged block for a nested spec."""
    import json

    if isinstance(value, dict) and set(value) == {"__spec__"}:
        return spec_yaml(value["__spec__"], indent + 4)
    if _contains_spec(value):
        raise SpecError("a list or dict holding !new: objects cannot be written to yaml here")
    return json.dumps(value)


def _contains_spec(value):
    if isinstance(value, dict):
        return set(value) == {"__spec__"} or any(_contains_spec(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_spec(v) for v in value)
    return False


def spec_yaml(spec, indent=4):
    """A build spec as a hyperpyyaml ``!new:`` node (the text after ``key: ``).

    Parameters
    ----------
    spec : dict
        From :func:`spec_of`.
    indent : int
        Indentation of the node's arguments.

    Example
    -------
    >>> spec = {"class": "torch.nn.Sequential", "args": [
    ...     {"__spec__": {"class": "torch.nn.Flatten", "args": [], "kwargs": {}}},
    ...     {"__spec__": {"class": "torch.nn.LazyLinear", "args": [],
    ...                   "kwargs": {"out_features": 16}}}], "kwargs": {}}
    >>> print("student: " + spec_yaml(spec))
    student: !new:torch.nn.Sequential
        - !new:torch.nn.Flatten
        - !new:torch.nn.LazyLinear
            out_features: 16
    """
    args, kwargs = spec.get("args", []), spec.get("kwargs", {})
    if args and kwargs:
        raise SpecError(
            f"{spec['class']}: positional and keyword arguments together cannot be written "
            "as one hyperpyyaml !new: node"
        )
    pad = " " * indent
    lines = [f"!new:{spec['class']}"]
    lines += [f"{pad}- {_yaml_value(v, indent)}" for v in args]
    lines += [f"{pad}{k}: {_yaml_value(v, indent)}" for k, v in kwargs.items()]
    return "\n".join(lines)
