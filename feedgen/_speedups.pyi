# the compiled module's signatures (feedgen/_speedups.c); any object with the buffer protocol works
# where feedgen passes numpy arrays
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

def clean(
    data: np.ndarray,
    offsets: np.ndarray,
    valid: np.ndarray,
    html: bool,
    keep_lines: bool,
    no_reference: np.ndarray,
    names: np.ndarray,
    name_len: np.ndarray,
    chars: np.ndarray,
    char_len: np.ndarray,
    nfc_safe: np.ndarray,
    out: np.ndarray,
    out_offsets: np.ndarray,
    general: np.ndarray,
    unnormalized: np.ndarray,
    /,
) -> int: ...
def rows(
    fields: Sequence[tuple[np.ndarray, np.ndarray, bytes, bytes, int, bool]],
    row_open: bytes,
    row_close: bytes,
    lengths: np.ndarray,
    allocate: Callable[[int], pa.Buffer],
    keep: np.ndarray | None = None,
    /,
) -> pa.Buffer: ...
def hash64(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def prices(
    data: np.ndarray, offsets: np.ndarray, exps: np.ndarray, minor: np.ndarray, status: np.ndarray, /
) -> None: ...
def urls(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def commas(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def work(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def gtins(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def price_texts(
    minor: np.ndarray,
    exps: np.ndarray,
    codes: np.ndarray,
    parsed: np.ndarray,
    code_data: np.ndarray,
    code_offsets: np.ndarray,
    out: np.ndarray,
    out_offsets: np.ndarray,
    /,
) -> int: ...
def url_lists(data: np.ndarray, offsets: np.ndarray, out: np.ndarray, /) -> None: ...
def seen(hashes: np.ndarray, present: np.ndarray, table: np.ndarray, out: np.ndarray, /) -> int: ...
def splice(
    data: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    new_data: np.ndarray,
    new_offsets: np.ndarray,
    out: np.ndarray,
    out_offsets: np.ndarray,
    /,
) -> int: ...
