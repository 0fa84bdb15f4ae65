"""AccVideo Workbench: `python app.py` starts the Gradio app on the bundled tiny models."""

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no code path downloads anything


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="tiny-teacher", help="model name or pipeline folder")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args()

    from accvideo.models.registry import load_pipeline
    from accvideo.ui import build_app

    load_pipeline(args.model)  # load once at start: a missing model fails here, with its fix
    build_app(args.model).launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
