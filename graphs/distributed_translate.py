"""Translating a manifest on several processes: `dragoman translate --manifest M --devices N`.

Lightning Fabric launches the processes (strategy `ddp`: the command re-runs once per extra
local device, or joins the processes that torchrun, `fabric run` or SLURM `srun` started;
`ddp_spawn` starts them from this one) and gives each its rank, device and a process group (gloo on CPU, NCCL on
GPUs). Rank r translates jobs r, r+N, r+2N, ... of the plan through the same
`dragoman.graphs.batch.translate_manifest` as one process, then rank zero merges.

Where the lines go: every rank appends to the one `D/run.jsonl`, as a single process does, so
"what is finished" lives in one file whatever number of processes a re-run uses. Each line is one
`write` on a file opened for appending, then fsync'd (`manifest.append_row`): the kernel places
every append at the end of the file, so lines from several processes never interleave on a local
disk or on the parallel file systems that clusters share between nodes (Lustre, GPFS). NFS
emulates appends from different machines and can lose a line written at the same moment as
another; the merge counts lines against the work the ranks report and names any shortfall
(`lost`), and a re-run redoes exactly those utterances.

Before the ranks start and after they finish, rank zero rewrites `run.jsonl` atomically (temp
file + rename) in plan order, one line per id: the result is the file one process would have
written, and a torn or repeated line left by a killed run is gone before anything is appended.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def translate_on_devices(args) -> int:
    """Launch the processes, translate one shard in each, merge; rank zero prints the summary."""
    from lightning.fabric import Fabric

    from dragoman.nodes.errors import DragomanError

    if not args.out_dir or not args.source_lang or not args.to:
        raise DragomanError("--manifest needs --out-dir, --source-lang and --to")
    device = args.device or "cpu"
    if ":" in device:
        raise DragomanError(f"--device {device}: with --devices give the kind only (cpu or cuda); ranks pick their own")
    try:
        fabric = Fabric(accelerator=device, devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy)
    except (RuntimeError, ValueError) as err:  # e.g. cuda asked for on a machine without GPUs
        raise DragomanError(f"--device {device} --devices {args.devices}: {str(err).splitlines()[0]}") from None
    # Under Lightning's own launcher (`fabric run`, which sets LT_CLI_USED) the processes exist and
    # Fabric joined them when it was built; launching again is refused.
    started_by_fabric_run = os.environ.get("LT_CLI_USED") == "1"
    summary = _translate_shard(fabric, args) if started_by_fabric_run else fabric.launch(_translate_shard, args)
    if fabric.global_rank != 0:
        return 0
    print(json.dumps(summary) if args.json else
          f"translated {summary['done']} new, {summary['skipped']} already done, {summary['failed']} failed "
          f"on {summary['processes']} processes -> {summary['run']}")
    if summary["lost"]:
        print(f"dragoman: error: {summary['lost']} finished line(s) missing from {summary['run']} "
              "(concurrent appends on NFS?); run the same command again to redo them", file=sys.stderr)
    return 2 if summary["failed"] or summary["lost"] else 0


def _translate_shard(fabric, args) -> dict:
    import torch

    from dragoman.graphs.batch import plan, translate_manifest
    from dragoman.graphs.commands.translate import load_graph

    graph = load_graph(args)
    graph.setup(device=str(fabric.device))
    run_path = Path(args.out_dir) / "run.jsonl"
    order = [job["id"] for job in plan(args.manifest, args.source_lang, args.to)]
    # A kill can leave a torn last line with no newline, which the next append would glue onto;
    # rank zero tidies the file (and counts it) before anyone appends.
    before = merge_run(run_path, order) if fabric.global_rank == 0 else 0
    fabric.barrier()
    shard = (fabric.global_rank, fabric.world_size)
    mine = translate_manifest(graph, args.manifest, args.source_lang, args.to, args.out_dir, limit=args.limit,
                              shard=shard)
    counts = torch.tensor([mine["done"], mine["skipped"], mine["failed"]], dtype=torch.long)
    total = fabric.all_reduce(counts, reduce_op="sum").tolist()  # also waits for every rank's appends
    summary = {"run": str(run_path), "done": total[0], "skipped": total[1], "failed": total[2],
               "processes": fabric.world_size}
    if fabric.global_rank == 0:
        summary["lines"] = merge_run(run_path, order)
        summary["lost"] = max(0, before + summary["done"] - summary["lines"])
    fabric.barrier()
    return summary


def merge_run(run_path: Path, order: list[str]) -> int:
    """Rewrite `run_path` atomically: one line per id (the last complete one), ids in `order`
    first, any others after them sorted by id; lines that are not JSON (torn by a kill) are
    dropped, their ids having been left for the next run to redo. Returns the line count."""
    from dragoman.nodes.manifest import iter_manifest, write_manifest

    if not run_path.is_file():
        return 0
    latest = {str(row.get("id")): row for row in iter_manifest(run_path, skip_bad=True)}
    rank = {job_id: i for i, job_id in enumerate(order)}
    ids = sorted(latest, key=lambda i: (rank.get(i, len(rank)), i))
    write_manifest(run_path, (latest[i] for i in ids))
    return len(ids)

