"""The conversion benchmark's inputs, built from the EVTX samples in /work/shared/data and reused.

- A corpus: copies of every sample file (`copy-NNNN/<group>/<file>.evtx`), as many copies as it
  takes to reach the size asked for. Real copies, not links: linked files would share one page
  cache entry and a "1 GB" corpus would be read from a few MB of memory.
- A single large file: the 64 KiB chunks of every sample, repeated, after one sample's file
  header with its chunk fields and CRC32 fixed. EVTX files cannot be concatenated whole (one file
  header, chunks at fixed offsets), but a chunk is self-contained (its offsets are relative to
  itself, its CRC32s cover only its own bytes), so chunks can be laid end to end.

Each input is written under a temporary name, verified (the `evtx` Python package must read
it; its record count is kept as the reference), then renamed, with a sidecar `.json` holding the
build parameters and the counts: an input is reused only when the sidecar matches.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import evtx

from callsweep.benchmark.evtx_python_pipeline import relative_output  # noqa: F401 (re-exported)

SAMPLES = Path("/work/shared/data")
FILE_HEADER_SIZE = 4096
CHUNK_SIZE = 65536
CHUNK_MAGIC = b"ElfChnk\0"
FILE_MAGIC = b"ElfFile\0"
# File header fields (evtx crate, src/evtx_file_header.rs): little-endian, the CRC32 at 124
# covers the first 120 bytes; the flags at 120 are not covered.
OLDEST_CHUNK, CURRENT_CHUNK, NEXT_RECORD, CHUNK_COUNT, FLAGS, HEADER_CRC = 8, 16, 24, 42, 120, 124
FLAG_DIRTY = 0x1
# Chunk header: the last event record id (the XML EventRecordID is separate) at 32.
CHUNK_LAST_RECORD_ID = 32


@dataclass(frozen=True)
class EvtxInput:
    """One input as every contender gets it: the paths to pass and what they hold."""

    name: str
    paths: tuple[Path, ...]  # files or directories, given to every contender as they are
    files: tuple[Path, ...]  # the EVTX files under `paths`
    bytes: int
    # Records the `evtx` Python package reads from these files (its errors not counted).
    pyevtx_records: int

    @property
    def mib(self) -> float:
        return self.bytes / 2**20


def sample_files(root: Path = SAMPLES) -> list[Path]:
    return sorted(root.glob("*/*.evtx"))


def _samples_digest(samples: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in samples:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def pyevtx_record_count(path: Path) -> int:
    """Records the `evtx` package yields; a record it cannot parse raises from `next` and the
    iteration goes on, so such records are passed over, as the Python contender does."""
    records = iter(evtx.PyEvtxParser(str(path)).records_json())
    count = 0
    while True:
        try:
            next(records)
        except StopIteration:
            return count
        except RuntimeError:
            continue
        count += 1


def _load_sidecar(path: Path, params: dict) -> dict | None:
    sidecar = path.with_name(path.name + ".json")
    if not (path.exists() and sidecar.is_file()):
        return None
    stored = json.loads(sidecar.read_text())
    return stored if stored.get("params") == params else None


def _store_sidecar(path: Path, params: dict, facts: dict) -> None:
    sidecar = path.with_name(path.name + ".json")
    sidecar.write_text(json.dumps({"params": params, **facts}, indent=2) + "\n")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


# --- the corpus ---------------------------------------------------------------------------------


def copies_for(megabytes: float, samples: list[Path]) -> int:
    """Copies of the sample set needed to reach `megabytes` MiB (at least one)."""
    per_copy = sum(p.stat().st_size for p in samples)
    return max(1, -(-int(megabytes * 2**20) // per_copy))


def _copy_dir(corpus: Path, index: int, subset_copies: int) -> Path:
    # The subset's copies under a folder of their own, so the subset is one directory and the
    # whole corpus another: `callsweep convert` mirrors each input below the directory given,
    # and several copy folders given side by side would map to the same outputs.
    part = "subset" if index < subset_copies else "rest"
    return corpus / part / f"copy-{index:04d}"


def ensure_corpus(folder: Path, megabytes: float, subset_share: float) -> tuple[Path, dict]:
    """The corpus folder (built unless already there) and its sidecar facts: `copies`,
    `subset_copies` and the `evtx` package's record count per sample file."""
    samples = sample_files()
    copies = copies_for(megabytes, samples)
    subset_copies = max(1, round(copies * subset_share))
    corpus = folder / "evtx-corpus"
    params = {
        "samples": _samples_digest(samples),
        "copies": copies,
        "subset_copies": subset_copies,
    }
    stored = _load_sidecar(corpus, params)
    if stored is not None:
        return corpus, {**params, "records_per_sample": stored["records_per_sample"]}
    _remove(corpus)
    partial = corpus.with_name(corpus.name + ".partial")
    _remove(partial)
    for index in range(copies):
        copy = _copy_dir(partial, index, subset_copies)
        for sample in samples:
            target = copy / sample.relative_to(SAMPLES)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample, target)
    partial.rename(corpus)
    per_sample = {str(s.relative_to(SAMPLES)): pyevtx_record_count(s) for s in samples}
    _store_sidecar(corpus, params, {"records_per_sample": per_sample})
    return corpus, {**params, "records_per_sample": per_sample}


def _copies(count: int) -> str:
    return f"{count} cop{'y' if count == 1 else 'ies'}"


def corpus_inputs(corpus: Path, facts: dict) -> tuple[EvtxInput, EvtxInput]:
    """The whole corpus and its subset, each one directory."""
    per_copy = sum(facts["records_per_sample"].values())

    def one(name: str, root: Path, copies: int) -> EvtxInput:
        files = tuple(sorted(root.rglob("*.evtx")))
        return EvtxInput(
            name=name,
            paths=(root,),
            files=files,
            bytes=sum(f.stat().st_size for f in files),
            pyevtx_records=copies * per_copy,
        )

    whole = one(f"corpus, {_copies(facts['copies'])}", corpus, facts["copies"])
    subset = one(
        f"corpus subset, {_copies(facts['subset_copies'])}",
        corpus / "subset",
        facts["subset_copies"],
    )
    return whole, subset


# --- the single large file ----------------------------------------------------------------------


def _chunks(path: Path) -> Iterator[bytes]:
    """The chunks of an EVTX file whose magic is right (an empty or overwritten one is not a
    chunk; damaged records inside a chunk are kept: the contenders must cope with them)."""
    data = path.read_bytes()
    for offset in range(FILE_HEADER_SIZE, len(data) - CHUNK_SIZE + 1, CHUNK_SIZE):
        chunk = data[offset : offset + CHUNK_SIZE]
        if chunk.startswith(CHUNK_MAGIC):
            yield chunk


def _clean_header(samples: list[Path]) -> bytes:
    """The file header of the first sample that is not dirty and whose CRC32 holds."""
    for path in samples:
        header = path.read_bytes()[:FILE_HEADER_SIZE]
        (flags,) = struct.unpack_from("<I", header, FLAGS)
        (crc,) = struct.unpack_from("<I", header, HEADER_CRC)
        intact = crc == zlib.crc32(header[:120])
        if header.startswith(FILE_MAGIC) and not flags & FLAG_DIRTY and intact:
            return header
    raise RuntimeError("no sample with a clean EVTX file header")


def file_header(template: bytes, chunk_count: int, next_record_id: int) -> bytes:
    """`template` with the chunk fields set for `chunk_count` chunks and the CRC32 recomputed."""
    if chunk_count > 0xFFFF:
        raise ValueError(f"{chunk_count} chunks: the header's chunk count is 16 bits")
    header = bytearray(template)
    struct.pack_into("<Q", header, OLDEST_CHUNK, 0)
    struct.pack_into("<Q", header, CURRENT_CHUNK, chunk_count - 1)
    struct.pack_into("<Q", header, NEXT_RECORD, next_record_id)
    struct.pack_into("<H", header, CHUNK_COUNT, chunk_count)
    struct.pack_into("<I", header, HEADER_CRC, zlib.crc32(bytes(header[:120])))
    return bytes(header)


def write_large_file(path: Path, megabytes: float, samples: list[Path]) -> int:
    """Writes the sample chunks, in order and repeated, until the file reaches `megabytes` MiB;
    returns the number of chunks."""
    pool = [chunk for sample in samples for chunk in _chunks(sample)]
    count = max(1, -(-int(megabytes * 2**20 - FILE_HEADER_SIZE) // CHUNK_SIZE))
    chunks = [pool[i % len(pool)] for i in range(count)]
    last_id = max(struct.unpack_from("<Q", c, CHUNK_LAST_RECORD_ID)[0] for c in pool)
    with path.open("wb") as out:
        out.write(file_header(_clean_header(samples), count, last_id + 1))
        for chunk in chunks:
            out.write(chunk)
    return count


def ensure_large_file(folder: Path, megabytes: float) -> EvtxInput:
    """A single EVTX file of about `megabytes` MiB (built unless already there), verified by the
    `evtx` package."""
    samples = sample_files()
    path = folder / f"evtx-large-{megabytes:g}mib.evtx"
    params = {"samples": _samples_digest(samples), "megabytes": megabytes}
    stored = _load_sidecar(path, params)
    if stored is None:
        partial = path.with_name(path.name + ".partial")
        chunks = write_large_file(partial, megabytes, samples)
        records = pyevtx_record_count(partial)
        if records == 0:
            raise RuntimeError(f"the evtx package reads no record from {partial}")
        partial.rename(path)
        stored = {"chunks": chunks, "pyevtx_records": records}
        _store_sidecar(path, params, stored)
    return EvtxInput(
        name=f"large file {megabytes:g} MiB",
        paths=(path,),
        files=(path,),
        bytes=path.stat().st_size,
        pyevtx_records=stored["pyevtx_records"],
    )


def chunk_occurrences(path: Path, sample: Path) -> int:
    """How many chunks of `path` are byte for byte a chunk of `sample`."""
    wanted = set(_chunks(sample))
    return sum(chunk in wanted for chunk in _chunks(path))


def sample_chunk_count(sample: Path) -> int:
    return sum(1 for _ in _chunks(sample))


def warm_page_cache(files: tuple[Path, ...], block: int = 1 << 24) -> None:
    """Reads every byte once, untimed, so every contender finds the input in the page cache."""
    for path in files:
        with path.open("rb") as f:
            while f.read(block):
                pass
