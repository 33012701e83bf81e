"""Training data: user folders, ComfyUI IMAGE batches and built-in procedural art."""
from .crops import CropSource, crops_from_images, open_crop_source
from .dataset import BUILTIN_PREFIX, ImageDataset, from_images, open_dataset
from .folder import IMAGE_EXTENSIONS, list_image_files, load_image_folder, read_image
from .prepare import denoise_dataset, style_source
from .procedural import BUILTIN_DATASETS, make_builtin
from .resize import FIT_MODES, fit_square

__all__ = [
    "BUILTIN_DATASETS", "BUILTIN_PREFIX", "CropSource", "FIT_MODES", "IMAGE_EXTENSIONS", "ImageDataset",
    "crops_from_images", "fit_square", "from_images", "list_image_files", "load_image_folder", "make_builtin",
    "open_crop_source", "open_dataset", "read_image", "denoise_dataset", "style_source",
]
