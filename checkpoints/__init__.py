"""The bundled styles (one .safetensors file each), installed as the package data of `nst_video.checkpoints`."""
