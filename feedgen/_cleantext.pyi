# the compiled module's signature (feedgen/_cleantext.c); any object with the buffer protocol works,
# feedgen passes numpy arrays
import numpy as np

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
