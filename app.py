"""AccVideo Workbench: `python app.py` starts the Gradio app on the bundled tiny models.

It only parses arguments, builds the UI and launches; on a Hugging Face Space (`app_file: app.py`)
the same file runs with the Space's host and port from the environment.
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
    args = parser.parse_args()
    if args.mcp:
        import importlib.util

        if importlib.util.find_spec("mcp") is None:  # gradio's own error comes only after the models load
            parser.error("`--mcp` needs the `mcp` package (pip install 'gradio[mcp]'), which is not installed.")

    from accvideo.app.layout import build_app
    from accvideo.app.services.models import available_students
    from accvideo.app.services.toy import warm_up_toy
    from accvideo.models.registry import load_model

    load_model(args.model)  # load once at start: a missing model fails here, with its fix
    for ref in available_students().values():
        load_model(ref)
    threading.Thread(target=warm_up_toy, daemon=True).start()  # the toy's caches fill while the page opens
    build_app(args.model, runs_dir=args.runs_dir, max_queue=args.max_queue).launch(
        server_name=args.host, server_port=args.port, share=args.share, mcp_server=args.mcp,
        allowed_paths=[args.runs_dir])  # the watchdog clips the Distil tab plays live in the runs folder


if __name__ == "__main__":
    main()
