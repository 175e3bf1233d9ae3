"""Teacher text-embedding cache: the frozen text tower runs once per sentence.

The text student's loss, ``-cos(teacher_text(x), student_text(x))``, needs
only the teacher's embeddings of the corpus sentences, so they are computed
once (in batches, with a progress bar) and stored as ``embeddings.npy`` plus
``texts.json`` (the sentence of each row) in a folder named by a content key
over the teacher (name, source, weights' fingerprint) and the sentences. A
changed teacher or corpus builds a new cache; the files are written to a
temporary folder that is renamed into place when complete, so an interrupted
build never leaves a cache that looks finished.

Example
-------
>>> import tempfile
>>> class Toy:
...     name, source, fingerprint = "toy", "toy", "0"
...     def embed_text(self, texts):
...         return torch.nn.functional.normalize(torch.ones(len(texts), 4), dim=-1)
>>> cache = TextEmbeddingCache.build(Toy(), ["a", "b"], tempfile.mkdtemp())
>>> cache.lookup(["b"]).shape
torch.Size([1, 4])
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm


def text_cache_key(teacher, texts, dtype="float32"):
    """Short content key: the teacher's identity and weights, the sentences, the dtype.

    Example
    -------
    >>> class T:
    ...     name, source, fingerprint = "mini", "x.ckpt", "abc"
    >>> text_cache_key(T(), ["a"]) == text_cache_key(T(), ["a"])
    True
    """
    digest = hashlib.sha256()
    identity = [
        getattr(teacher, "name", ""),
        str(getattr(teacher, "source", "")),
        getattr(teacher, "fingerprint", ""),
        str(dtype),
    ]
    digest.update(json.dumps(identity).encode())
    for text in texts:
        digest.update(text.encode("utf-8") + b"\0")
    return digest.hexdigest()[:16]


class TextEmbeddingCache:
    """The teacher's L2-normalised text embeddings of a fixed list of sentences.

    Use :meth:`build` (computes what is missing, then opens it).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.texts = json.loads((self.folder / "texts.json").read_text(encoding="utf-8"))
        self.embeddings = np.load(self.folder / "embeddings.npy", mmap_mode="r")
        self.row = {text: i for i, text in enumerate(self.texts)}

    def __len__(self):
        return len(self.texts)

    @property
    def dim(self):
        """Embedding size D."""
        return int(self.embeddings.shape[1])

    def lookup(self, texts):
        """``[N, D]`` float32 embeddings of cached sentences (KeyError names a missing one)."""
        missing = [t for t in texts if t not in self.row]
        if missing:
            raise KeyError(
                f"{len(missing)} sentence(s) not in the cache {self.folder}: {missing[:3]}"
            )
        rows = [self.row[t] for t in texts]
        return torch.from_numpy(np.asarray(self.embeddings[rows], dtype=np.float32))

    @classmethod
    def build(cls, teacher, texts, cache_folder, batch_size=256, dtype="float32"):
        """Open the cache of ``texts`` under ``cache_folder``, computing it first if needed.

        Parameters
        ----------
        teacher : object
            Has ``embed_text(list[str]) -> [N, D]`` (L2-normalised).
        texts : list of str
            The sentences, in row order (duplicates are embedded once).
        cache_folder : str or Path
            Parent folder; the cache is ``<cache_folder>/text_<key>``.
        batch_size : int
            Sentences per teacher call.
        dtype : str
            Storage dtype (``float32`` or ``float16``).

        Returns
        -------
        TextEmbeddingCache
        """
        texts = list(dict.fromkeys(texts))
        folder = Path(cache_folder) / f"text_{text_cache_key(teacher, texts, dtype)}"
        if (folder / "embeddings.npy").is_file() and (folder / "texts.json").is_file():
            return cls(folder)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        chunks = []
        steps = range(0, len(texts), batch_size)
        for start in tqdm(steps, desc="teacher text embeddings", unit="batch"):
            with torch.no_grad():
                emb = teacher.embed_text(texts[start : start + batch_size])
            chunks.append(emb.detach().float().cpu().numpy().astype(dtype))
        dim = chunks[0].shape[1] if chunks else 0
        embeddings = np.concatenate(chunks) if chunks else np.zeros((0, dim), dtype=dtype)
        np.save(tmp / "embeddings.npy", embeddings)
        (tmp / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        if folder.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(folder)
        return cls(folder)
