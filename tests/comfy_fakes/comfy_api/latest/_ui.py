"""Stand-in for comfy_api.latest._ui: PreviewImage, which saves the images into ComfyUI's
temp folder (numbered like ComfyUI's savers) and shows them on the node."""
from __future__ import annotations

import os
import random

import numpy as np
from PIL import Image as PILImage

import folder_paths

from ._io import FolderType


class SavedResult(dict):
    def __init__(self, filename: str, subfolder: str, type: FolderType):
        super().__init__(filename=filename, subfolder=subfolder, type=type.value)


class _UIOutput:
    def as_dict(self) -> dict:
        raise NotImplementedError


class PreviewImage(_UIOutput):
    def __init__(self, image, animated: bool = False, cls=None, **kwargs):
        prefix = "ComfyUI_temp_" + "".join(random.choice("abcdefghijklmnopqrstupvxyz") for _ in range(5))
        folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
            prefix, folder_paths.get_temp_directory(), image[0].shape[1], image[0].shape[0])
        self.values = []
        for i, img in enumerate(image):
            array = np.clip(255.0 * img.cpu().numpy(), 0, 255).astype(np.uint8)
            file = f"{name}_{counter + i:05}_.png"
            PILImage.fromarray(array).save(os.path.join(folder, file), compress_level=1)
            self.values.append(SavedResult(file, subfolder, FolderType.temp))
        self.animated = animated

    def as_dict(self):
        return {"images": self.values, "animated": (self.animated,)}
