"""A saved generation's exact vectors, read when first used rather than at the load (most
recalls search the graph and never use them), and checked again on the bytes read."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from ._failures import Broken

__all__ = ["SavedVectors"]


@dataclass(frozen=True)
class SavedVectors:
    """A saved generation's ``vectors.npy``, read when first used: its size and digest as its
    manifest lists them (checked again on the bytes read, so that a file changed since the
    load never reaches recall), and the vectors it must hold."""

    path: Path
    size: int
    digest: str
    slots: int
    dim: int
    room: int

    def read(self) -> np.ndarray[Any, Any]:
        """The vectors, in an array of ``room`` rows; :class:`Broken` if the file is not the
        one the manifest describes."""
        try:
            with self.path.open("rb") as f:
                buf = bytearray(self.size)
                got = f.readinto(buf)
                more = f.read(1)
        except OSError as exc:
            raise Broken(f"the saved vectors are unreadable ({exc})") from None
        if got != self.size or more or xxhash.xxh3_128_hexdigest(buf) != self.digest:
            raise Broken("the saved vectors changed since the index was loaded")
        header = io.BytesIO(bytes(buf[:4096]))
        try:
            version = np.lib.format.read_magic(header)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, fortran, dtype = read_header(header)
        except ValueError as exc:
            raise Broken(f"the saved vectors are not an array ({exc})") from None
        want = (self.slots, self.dim)
        if shape != want or fortran or dtype != np.dtype("<f4"):
            raise Broken(f"the saved vectors are {dtype} of shape {shape}, not {want}")
        start = header.tell()
        if start + self.slots * self.dim * 4 != self.size:
            raise Broken("the saved vectors' file has another size than its array")
        vecs = np.frombuffer(buf, dtype=np.float32, offset=start).reshape(want)
        if self.room == self.slots:
            return vecs  # over the bytearray read: writable, and not copied again
        room = np.zeros((self.room, self.dim), dtype=np.float32)
        room[: self.slots] = vecs
        return room
