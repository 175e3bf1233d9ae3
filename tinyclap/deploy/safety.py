r"""Safe loading of shared folders: an allow-list of yaml tags, verified weights.

A shared student folder is loaded by people who did not write it, so loading
must not run code from it. hyperpyyaml builds whatever a ``hyperparams.yaml``
names (``!new:``, ``!name:``, ``!apply:``, ``!module:``, ``!applyref:`` import
and call anything, ``!include:`` reads another file, and PyYAML's own
``!!python/...`` tags construct arbitrary objects). :func:`check_hparams` reads
the yaml as data first (a PyYAML *compose*: nodes and tags, nothing built) and
refuses every tag outside :data:`ALLOWED_TARGETS`, naming the key, the tag and
the file. The opt-in is ``trust_remote_code=True`` (``--trust_remote_code``).

Before any of that, :func:`check_yaml_bounds` bounds the document: its size
(:data:`MAX_YAML_CHARS`) and the number of nodes it holds once every alias
(``*name``) and hyperpyyaml reference (``!ref <key>``, ``!copy <key>``) is
expanded (:data:`MAX_YAML_NODES`). A "billion laughs" file (ten levels of
nine aliases, 3.5 billion nodes from a few hundred bytes) would otherwise keep
hyperpyyaml walking for hours; the bound holds whatever the opt-in, since no
trust makes such a file loadable.

Overrides passed to ``from_hparams`` are not checked: they come from the local
user, like the code that calls ``from_hparams``.

Weights are written as safetensors (tensors and string metadata only, no
pickle) and their SHA-256 recorded in ``export.json``; :func:`verify_sha256`
checks a file against it. A file with no recorded hash (an earlier export, or
one whose hashes were deleted) loads only with ``trust_unverified=True``
(``--trust_unverified``; :mod:`tinyclap.runtime.integrity`). :func:`load_tensors`
also reads the ``.ckpt`` files of earlier exports, with
``torch.load(weights_only=True)``.

Example
-------
>>> check_hparams("a: 1\nfrontend: !new:tinyclap.audio.features.LogMel\n", "h.yaml")
>>> check_hparams("pwn: !apply:os.system [touch pwned]", "h.yaml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
tinyclap.deploy.safety.UntrustedCodeError: h.yaml: key 'pwn' has the tag !apply:os.system; ...
"""

import json
import re

import torch
import yaml

from tinyclap._compat import hyperpyyaml_hook
from tinyclap.runtime.text import sha256_of

# Everything an exported folder may import: the classes and functions tinyclap
# writes into hyperparams.yaml (tinyclap.deploy.export.HPARAMS_TEMPLATE and the
# students' build specs) and SpeechBrain's Pretrainer.
ALLOWED_TARGETS = frozenset(
    {
        "tinyclap.audio.features.LogMel",
        "tinyclap.students.PhiNetStudent",
        "tinyclap.students.phinet.PhiNetStudent",
        "tinyclap.deploy.text_encoders.LabelEmbeddingTables",
        "tinyclap.deploy.text_encoders.MiniTextEncoder",
        "tinyclap.deploy.text_encoders.TeacherTextEncoder",
        "tinyclap.deploy.text_encoders.TextStudentEncoder",
        "tinyclap.deploy.inference.strict_state_dict_transfer",
        "speechbrain.utils.parameter_transfer.Pretrainer",
    }
)
# Modules of folders exported by tinyclap 0.1 (before the package was layered) and
# where their classes live now: :func:`upgrade_legacy_paths` rewrites the tags, so
# shared folders of that version keep loading.
LEGACY_MODULES = {
    "tinyclap.features": "tinyclap.audio.features",
    "tinyclap.text_encoders": "tinyclap.deploy.text_encoders",
    "tinyclap.inference": "tinyclap.deploy.inference",
}
_LEGACY_TAG = re.compile(
    r"(!(?:new|name|apply|applyref|module):)(" + "|".join(map(re.escape, LEGACY_MODULES)) + r")\."
)
IMPORTING_TAGS = ("!new:", "!name:", "!apply:", "!applyref:", "!module:")
PLAIN_TAGS = frozenset({"!ref", "!copy", "!tuple", "!PLACEHOLDER"})  # import nothing
CORE_TAGS = frozenset(
    f"tag:yaml.org,2002:{t}"
    for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge")
)
TUPLE_PATTERN = re.compile(r"^\(.*\)$", re.DOTALL)  # hyperpyyaml's implicit !tuple
SAFETENSORS_MAGIC_OFFSET = 8  # u64 header length, then the JSON header


MAX_YAML_CHARS = 1_000_000  # an exported hyperparams.yaml is a few kB
MAX_YAML_NODES = 100_000  # ...and a few hundred nodes, expanded (a 1024-entry kept_dims: ~1k)
_REFERENCE = re.compile(r"<([^>]*)>")  # hyperpyyaml's <key[a][b].attr> inside !ref / !copy


class OversizedYamlError(ValueError):
    """A yaml document too large, or expanding to too many nodes, to load."""


class UntrustedCodeError(RuntimeError):
    """A shared folder would run code that tinyclap does not vouch for."""


class WeightsChecksumError(ValueError):
    """A weights file does not match the SHA-256 recorded at export."""


OPT_IN = (
    "Load it only if you trust its source: trust_remote_code=True in Python, "
    "--trust_remote_code on the command line."
)


def _where(path):
    """``a.b[0]`` from a key path list."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _walk(node, path, seen):
    """Yield ``(key path, tag, node)`` for every node below ``node``."""
    if id(node) in seen:  # an alias of a node already visited
        return
    seen.add(id(node))
    yield path, node.tag, node
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _walk(key, [*path, "<key>"], seen)
            name = key.value if isinstance(key, yaml.ScalarNode) else "<key>"
            yield from _walk(value, [*path, name], seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, value in enumerate(node.value):
            yield from _walk(value, [*path, i], seen)


def _reference_target(root, reference):
    """The node a hyperpyyaml reference ``key[a][b].attr`` points to in ``root`` (or None)."""
    node = root
    for part in reference.split(".", 1)[0].split("["):
        part = part.strip("]")
        if not isinstance(node, yaml.MappingNode):
            return None
        node = next((v for k, v in node.value
                     if isinstance(k, yaml.ScalarNode) and k.value == part), None)  # fmt: skip
        if node is None:
            return None
    return node


def expanded_nodes(root, limit=MAX_YAML_NODES):
    r"""Nodes of a composed document with aliases and ``!ref`` / ``!copy`` expanded.

    Composing keeps an alias as the node it names (no copy), so the count is
    computed over the graph, each node once, and stops growing past ``limit``.
    A reference in a ``!ref`` / ``!copy`` scalar counts the node it names
    (resolved from the top-level mapping); a circular one counts nothing
    (hyperpyyaml refuses it itself).

    Example
    -------
    >>> bomb = "a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, !ref <b>]"
    >>> expanded_nodes(yaml.compose(bomb, Loader=yaml.SafeLoader))
    75
    """
    sizes, cap = {}, limit + 1

    def size(node):
        if id(node) in sizes:
            return sizes[id(node)]
        sizes[id(node)] = 0  # in progress: a cycle counts nothing more
        total = 1
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = node.value
        elif node.tag in ("!ref", "!copy"):
            children = [t for r in _REFERENCE.findall(str(node.value))
                        if (t := _reference_target(root, r)) is not None]  # fmt: skip
        else:
            children = []
        for child in children:
            total = min(cap, total + size(child))
        sizes[id(node)] = total
        return total

    return size(root)


def check_yaml_bounds(text, filename, max_chars=MAX_YAML_CHARS, max_nodes=MAX_YAML_NODES):
    r"""Raise :class:`OversizedYamlError` if ``text`` is too large to load safely.

    Parameters
    ----------
    text : str
        A yaml document (read as data: composed, nothing constructed).
    filename : str
        Where it comes from (named in the error).
    max_chars, max_nodes : int
        The bounds: characters, and nodes once aliases and references are expanded.

    Example
    -------
    >>> laughs = "l0: &l0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    ...     f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]\n" for i in range(1, 10))
    >>> check_yaml_bounds(laughs, "h.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    tinyclap.deploy.safety.OversizedYamlError: h.yaml: more than 100000 yaml nodes once ...
    """
    if len(text) > max_chars:
        raise OversizedYamlError(
            f"{filename}: {len(text)} characters, more than the {max_chars} a model's "
            "hyperparams may hold; not loaded"
        )
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        count = 0 if root is None else expanded_nodes(root, max_nodes)
    except yaml.YAMLError as err:
        raise OversizedYamlError(f"{filename}: not readable as yaml data: {err}") from None
    except RecursionError:
        raise OversizedYamlError(
            f"{filename}: nested or chained too deeply to be a model's hyperparams; not loaded"
        ) from None
    if count > max_nodes:
        raise OversizedYamlError(
            f"{filename}: more than {max_nodes} yaml nodes once its aliases (*name) and "
            "references (!ref) are expanded (an exported folder has a few hundred): a "
            "'billion laughs' file, not loaded"
        )


def _tuple_problem(text):
    """Why a ``(...)`` scalar is unsafe (hyperpyyaml parses it with PyYAML's full loader)."""
    try:
        root = yaml.compose("[" + text[1:-1] + "]", Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        return f"a tuple that is not plain yaml data ({str(err).splitlines()[0]})"
    for _, tag, _ in _walk(root, [], set()):
        if tag not in CORE_TAGS:
            return f"a tuple holding the tag {tag}"
    return None


def hparams_problems(text, allowed=ALLOWED_TARGETS):
    r"""Every tag of a hyperparams text that could import or run code outside ``allowed``.

    Parameters
    ----------
    text : str
        The yaml, read as data (composed, nothing constructed).
    allowed : set of str
        Dotted names that ``!new:`` / ``!name:`` / ``!apply:`` ... may target.

    Returns
    -------
    list of (str, str)
        ``(key path, what)`` for each refused node, in file order.

    Example
    -------
    >>> hparams_problems("a: !ref <b>\nb: !new:os.system\nc: (1, 2)\nd: !include:x.yaml")
    [('b', 'the tag !new:os.system'), ('d', 'the tag !include:x.yaml')]
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if root is None:
        return []
    problems = []
    for path, tag, node in _walk(root, [], set()):
        where = _where(path)
        if tag.startswith(IMPORTING_TAGS):
            if tag.split(":", 1)[1] not in allowed:
                problems.append((where, f"the tag {tag}"))
        elif tag in PLAIN_TAGS or tag in CORE_TAGS:
            pass
        else:  # !include:, !!python/..., any other tag
            problems.append((where, f"the tag {tag}"))
        plain = tag == "!tuple" or getattr(node, "style", "") is None
        if isinstance(node, yaml.ScalarNode) and plain and TUPLE_PATTERN.match(node.value):
            problem = _tuple_problem(node.value)
            if problem:
                problems.append((where, problem))
    return problems


def upgrade_legacy_paths(text):
    """``hyperparams.yaml`` text with tinyclap 0.1's class paths mapped to today's.

    Only tag targets change (the allow-list then checks the result as usual).

    Example
    -------
    >>> upgrade_legacy_paths("frontend: !new:tinyclap.features.LogMel")
    'frontend: !new:tinyclap.audio.features.LogMel'
    """
    return _LEGACY_TAG.sub(lambda m: m.group(1) + LEGACY_MODULES[m.group(2)] + ".", text)


def check_hparams(text, filename, allowed=ALLOWED_TARGETS):
    """Raise :class:`UntrustedCodeError` if ``text`` would run code outside ``allowed``.

    Parameters
    ----------
    text : str
        The content of a ``hyperparams.yaml``.
    filename : str
        Where it comes from (named in the error).
    allowed : set of str
        Dotted names tags may target.

    Raises
    ------
    UntrustedCodeError
        Naming the first offending key and tag (and how many more there are).
    OversizedYamlError
        The document is too large, or expands to too many nodes (:func:`check_yaml_bounds`).
    """
    check_yaml_bounds(text, filename)
    try:
        problems = hparams_problems(text, allowed)
    except yaml.YAMLError as err:
        raise UntrustedCodeError(f"{filename}: not readable as yaml data: {err}") from None
    if not problems:
        return
    where, what = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    kind = "it is not on tinyclap's allow-list (what exported folders use)"
    if what.startswith("the tag !new:"):
        kind += "; a custom student class of your own also needs the opt-in"
    raise UntrustedCodeError(
        f"{filename}: key {where!r} has {what}{more}; {kind}, and building it could run "
        f"code from the model folder, so it was not loaded. {OPT_IN}"
    )


def _safe_make_tuple(loader, node):
    """The ``!tuple`` constructor of hyperpyyaml, parsing its items with the *safe* loader."""
    text = loader.construct_scalar(node)
    return tuple(yaml.safe_load("[" + text[1:-1] + "]"))


def safe_tuples():
    """While active, hyperpyyaml parses ``(...)`` tuples with ``yaml.safe_load``.

    hyperpyyaml parses them with PyYAML's full loader, which constructs
    ``!!python/...`` objects; a tuple assembled at load time (``!ref``
    interpolation) is beyond a static check, so the constructor itself is made
    safe. hyperpyyaml looks it up by module-global name at each load.
    """
    return hyperpyyaml_hook("_make_tuple", _safe_make_tuple)


sha256_file = sha256_of  # hex SHA-256 of a file (one reader, in the torch-free runtime)


def verify_sha256(path, expected, name=None):
    """Raise :class:`WeightsChecksumError` (naming ``name``) if ``path`` has another hash."""
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsChecksumError(
            f"{name or path}: SHA-256 {actual} does not match {expected} recorded in "
            "export.json; the file was modified or corrupted after export. Download or "
            "re-export the folder (tinyclap export)."
        )


def save_tensors(path, tensors, metadata=None):
    """Write ``{name: tensor}`` as safetensors, with string ``metadata``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.safetensors"
    >>> save_tensors(p, {"w": torch.ones(2)}, {"format": "toy"})
    >>> load_tensors(p)[1]
    {'format': 'toy'}
    """
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})


def is_safetensors(path):
    """True if ``path`` holds safetensors (a length, then a JSON header), not a torch zip."""
    with open(path, "rb") as f:
        head = f.read(SAFETENSORS_MAGIC_OFFSET + 1)
    return len(head) == SAFETENSORS_MAGIC_OFFSET + 1 and head[-1:] == b"{"


def load_tensors(path):
    """``(tensors, metadata)`` of a safetensors file, or ``(payload, None)`` of a ``.ckpt``.

    The format is read from the content (a folder's files are collected under
    SpeechBrain's ``<name>.ckpt`` names whatever they hold). Earlier exports'
    ``.ckpt`` files go through ``torch.load(weights_only=True)``: no pickled code.
    """
    if is_safetensors(path):
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    return torch.load(path, map_location="cpu", weights_only=True), None


def metadata_json(metadata, key):
    """A JSON value stored in safetensors string metadata."""
    return json.loads(metadata[key])
