"""Images, MATLAB-compatible resizing and colour conversion, test sets."""

from search.data.color import gray2y, rgb2y, rgb2ycbcr, ycbcr2rgb  # noqa: F401
from search.data.datasets import TestSet, find_test_set, load_test_set  # noqa: F401
from search.data.images import (  # noqa: F401
    IMAGE_SUFFIXES,
    is_image_file,
    mod_crop,
    read_image,
    write_image,
)
from search.data.imresize import cubic, imresize, resize_matrix  # noqa: F401
