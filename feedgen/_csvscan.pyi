# the compiled CSV reader's signatures (feedgen/_csvscan.c); any object with the buffer protocol works
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import pyarrow as pa

Buffer: TypeAlias = bytes | bytearray | memoryview | np.ndarray | pa.Buffer

def scan(
    data: Buffer,
    pos: int,
    final: bool,
    delimiter: int,
    ncols: int,
    spans: np.ndarray,
    row: int,
    max_rows: int,
    sizes: np.ndarray,
    /,
) -> tuple[int, int, bool]: ...
def fill(data: Buffer, spans: np.ndarray, rows: int, columns: Sequence[tuple[Buffer, Buffer]], /) -> None: ...
