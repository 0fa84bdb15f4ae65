"""`python -m accvideo models | convert | lora-export`: real checkpoints on the command line."""

from __future__ import annotations

import argparse
import json


def cmd_models(args: argparse.Namespace) -> int:
    from accvideo.models.real import model_status

    rows = model_status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        state = f"available at {row['path']}" if row["available"] else "not downloaded"
        print(f"{row['name']:<24} {row['family']:<8} {row['role']:<8} {state}")
        for command in row["download"]:
            print(f"{'':<26}{command}")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from accvideo.models.convert import convert_checkpoint
    from accvideo.models.real import prepare_student

    if args.model:
        out = prepare_student(args.model, checkpoint=args.checkpoint)
        print(f"converted {args.model} into the pipeline folder {out}")
        return 0
    missing = [f"--{name}" for name in ("family", "checkpoint", "config", "out") if not getattr(args, name)]
    if missing:
        raise ValueError(f"`convert` needs `--model NAME`, or all of --family --checkpoint --config --out; "
                         f"missing {missing}.")
    out = convert_checkpoint(args.family, args.checkpoint, args.config, args.out)
    print(f"wrote the diffusers transformer folder {out}")
    return 0


def cmd_lora_export(args: argparse.Namespace) -> int:
    from accvideo.eval.lora import export_checked_lora

    report = export_checked_lora(args.student, args.teacher, args.out, rank=args.rank, check=not args.no_check)
    print(json.dumps(report, indent=2))
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("models", help="list the real models, where each is, and how to download the missing ones")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("convert", help="convert an original-format transformer checkpoint to diffusers")
    p.add_argument("--model", help="a released student (e.g. accvideo-hunyuan-5step): converts it into a pipeline "
                                   "folder beside its teacher's components")
    p.add_argument("--family", choices=["hunyuan", "wan"])
    p.add_argument("--checkpoint", help="original-format .pt / .safetensors file or folder of shards")
    p.add_argument("--config", help="diffusers transformer folder (or config.json) of the same architecture")
    p.add_argument("--out", help="output diffusers transformer folder")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("lora-export", help="export student - teacher as a LoRA (truncated SVD per Linear)")
    p.add_argument("--student", required=True, help="student model name or pipeline folder")
    p.add_argument("--teacher", required=True, help="teacher model name or pipeline folder")
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--out", required=True, help="output folder (pytorch_lora_weights.safetensors + report)")
    p.add_argument("--no-check", action="store_true", help="skip the reconstruction check on the teacher")
    p.set_defaults(func=cmd_lora_export)

    p = sub.add_parser("verify", help="check a model, run or SynVid folder: every header and recorded sha256")
    p.add_argument("path", help="model name, pipeline folder, run folder or SynVid folder")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Check a model, run or SynVid folder: components, headers and every recorded content hash."""
    from accvideo.training.verify import verify_folder

    report = verify_folder(args.path)
    if not report["hashed_files_checked"] and report["pipelines"]:
        report["note"] = "no sha256.json: components and headers checked, weight contents not"
    print(json.dumps(report, indent=2))
    if report["problems"]:  # exit 2, as for every refused input, naming each bad file
        raise ValueError(f"{len(report['problems'])} problem(s) in {report['folder']}: "
                         + " ".join(report["problems"]))
    return 0
