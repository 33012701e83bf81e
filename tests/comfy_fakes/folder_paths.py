"""A faithful stand-in for ComfyUI's folder_paths module (the parts the pack uses).

Behaviour follows ComfyUI 0.3.64: a dict of folder name -> ([paths], extensions), an empty
extension set lists every file, names resolve relative to each registered path in order,
and get_save_image_path numbers files as prefix_00001_ and refuses to leave the output dir.
`configure(base)` points everything at a temporary ComfyUI-like tree.
"""
from __future__ import annotations

import os

base_path = ""
models_dir = ""
folder_names_and_paths: dict[str, tuple[list[str], set[str]]] = {}
_input_dir = ""
_output_dir = ""
_temp_dir = ""


def configure(base: str) -> None:
    global base_path, models_dir, _input_dir, _output_dir, _temp_dir
    base_path = base
    models_dir = os.path.join(base, "models")
    _input_dir = os.path.join(base, "input")
    _output_dir = os.path.join(base, "output")
    _temp_dir = os.path.join(base, "temp")
    for d in (models_dir, _input_dir, _output_dir, _temp_dir):
        os.makedirs(d, exist_ok=True)
    folder_names_and_paths.clear()
    folder_names_and_paths["checkpoints"] = ([os.path.join(models_dir, "checkpoints")],
                                             {".ckpt", ".pt", ".safetensors"})


def get_input_directory() -> str:
    return _input_dir


def get_output_directory() -> str:
    return _output_dir


def get_temp_directory() -> str:
    return _temp_dir


def add_model_folder_path(folder_name: str, full_folder_path: str, is_default: bool = False) -> None:
    if folder_name in folder_names_and_paths:
        paths = folder_names_and_paths[folder_name][0]
        if full_folder_path in paths:
            if is_default and paths[0] != full_folder_path:
                paths.remove(full_folder_path)
                paths.insert(0, full_folder_path)
        elif is_default:
            paths.insert(0, full_folder_path)
        else:
            paths.append(full_folder_path)
    else:
        folder_names_and_paths[folder_name] = ([full_folder_path], set())


def get_folder_paths(folder_name: str) -> list[str]:
    return list(folder_names_and_paths[folder_name][0])


def get_filename_list(folder_name: str) -> list[str]:
    paths, extensions = folder_names_and_paths[folder_name]
    found = set()
    for root in paths:
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = [d for d in dirnames if d != ".git"]
            for f in filenames:
                rel = os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/")
                if not extensions or os.path.splitext(f)[1].lower() in extensions:
                    found.add(rel)
    return sorted(found)


def get_full_path(folder_name: str, filename: str) -> str | None:
    if folder_name not in folder_names_and_paths:
        return None
    filename = os.path.relpath(os.path.join("/", filename), "/")
    for root in folder_names_and_paths[folder_name][0]:
        full = os.path.join(root, filename)
        if os.path.isfile(full):
            return full
    return None


def get_full_path_or_raise(folder_name: str, filename: str) -> str:
    full = get_full_path(folder_name, filename)
    if full is None:
        raise FileNotFoundError(f"Model in folder '{folder_name}' with filename '{filename}' not found.")
    return full


def get_save_image_path(filename_prefix: str, output_dir: str, image_width=0, image_height=0):
    subfolder = os.path.dirname(os.path.normpath(filename_prefix))
    filename = os.path.basename(os.path.normpath(filename_prefix))
    full_output_folder = os.path.join(output_dir, subfolder)
    if os.path.commonpath((output_dir, os.path.abspath(full_output_folder))) != output_dir:
        raise Exception("**** ERROR: Saving image outside the output folder is not allowed.")
    counter = 1
    try:
        for name in os.listdir(full_output_folder):
            stem = name[:len(filename) + 1]
            if os.path.normcase(stem[:-1]) == os.path.normcase(filename) and stem[-1:] == "_":
                try:
                    counter = max(counter, int(name[len(filename) + 1:].split("_")[0]) + 1)
                except ValueError:
                    pass
    except FileNotFoundError:
        os.makedirs(full_output_folder, exist_ok=True)
    return full_output_folder, filename, counter, subfolder, filename_prefix
