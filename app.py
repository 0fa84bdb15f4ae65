"""AccVideo Workbench: `python app.py` starts the Gradio app on the bundled tiny models.

Real checkpoints found on disk (docs/GPU.md) are listed too; on a GPU:
`python app.py --model hunyuanvideo --device cuda --dtype bf16 [--offload model|sequential] [--vae-tiling]`.
It only parses arguments, builds the UI and launches; on a Hugging Face Space (`app_file: app.py`)
the same file runs with the Space's host and port from the environment, and the memory flags'
defaults from its variables (`ACCVIDEO_DEVICE`, `ACCVIDEO_DTYPE`, `ACCVIDEO_OFFLOAD`).
"""

import argparse
import os
import threading

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no code path downloads anything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny-teacher", help="teacher of the Compare tab: model name or folder")
    parser.add_argument("--runs-dir", default=os.environ.get("ACCVIDEO_RUNS_DIR", "runs/app"),
                        help="folder of the Distil tab's runs (everything a job reads or writes stays inside)")
    parser.add_argument("--max-queue", type=int, default=32, help="queued requests beyond which new ones are refused")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true")
    parser.add_argument("--mcp", action="store_true",
                        help="also serve the named endpoints (compare, toy, ...) as MCP tools at /gradio_api/mcp/")
    # how the real checkpoints load (the tiny models stay on the CPU in fp32); docs/GPU.md
    parser.add_argument("--device", default=os.environ.get("ACCVIDEO_DEVICE") or None,
                        help="cpu, cuda or cuda:N for the real models (default cpu)")
    parser.add_argument("--dtype", default=os.environ.get("ACCVIDEO_DTYPE", "fp32"),
                        help="fp32, bf16 or fp16 weights for the real models (default fp32; bf16 on a GPU)")
    parser.add_argument("--offload", default=os.environ.get("ACCVIDEO_OFFLOAD", "none"),
                        help="none, model (components to the GPU one at a time) or sequential (layer by layer)")
    parser.add_argument("--vae-tiling", action=argparse.BooleanOptionalAction, default=None,
                        help="decode in tiles (default: each model's own; on for the real HunyuanVideo models)")
    parser.add_argument("--gpu-mem", type=float, default=None, metavar="GB",
                        help="refuse a Distil job whose memory plan exceeds GB per GPU (default: the CUDA GPU's own "
                             "memory, for real teachers only)")
    parser.add_argument("--no-plan-check", action="store_true",
                        help="launch Distil jobs without the memory plan (a warning in the log)")
    args = parser.parse_args()
    from accvideo.app.services.models import RealModelOptions

    try:  # checked before anything loads: a typo or a missing GPU is named by its flag
        options = RealModelOptions(dtype=args.dtype, device=args.device, offload=args.offload,
                                   vae_tiling=args.vae_tiling).validate()
    except ValueError as err:
        parser.error(str(err))
    if args.gpu_mem is not None and not args.gpu_mem > 0:
        parser.error(f"`--gpu-mem` must be a number of GB > 0 but is {args.gpu_mem}.")
    if args.mcp:
        import importlib.util

        if importlib.util.find_spec("mcp") is None:  # gradio's own error comes only after the models load
            parser.error("`--mcp` needs the `mcp` package (pip install 'gradio[mcp]'), which is not installed.")

    from accvideo.app.layout import build_app
    from accvideo.app.services.models import startup_models
    from accvideo.app.services.toy import warm_up_toy
    from accvideo.models.registry import load_model

    # load once at start (a missing model fails here, with its fix): the teacher, the tiny students
    # and the teacher's own real students; other real models on disk load on their first use
    for ref in startup_models(args.model):
        load_model(ref, **options.load_kwargs(ref))
    threading.Thread(target=warm_up_toy, daemon=True).start()  # the toy's caches fill while the page opens
    build_app(args.model, runs_dir=args.runs_dir, max_queue=args.max_queue, options=options,
              gpu_mem=args.gpu_mem, plan_check=not args.no_plan_check).launch(
        server_name=args.host, server_port=args.port, share=args.share, mcp_server=args.mcp,
        allowed_paths=[args.runs_dir])  # the watchdog clips the Distil tab plays live in the runs folder


if __name__ == "__main__":
    main()
