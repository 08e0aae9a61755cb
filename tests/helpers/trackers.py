"""Reading back what the trackers stored, with each library's own readers where it has one: TensorBoard's event
files (EventAccumulator), an MLflow store (MlflowClient), a Lightning CSV log, and a W&B offline run, whose
``run-<id>.wandb`` file is read here (W&B's SDK no longer ships a Python reader): a LevelDB-style log of 32 KiB blocks
whose records are W&B's own protobuf ``Record`` messages."""

import csv
import json
import struct
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

WANDB_BLOCK = 32768
WANDB_CHUNK_HEADER = struct.Struct("<IHB")  # checksum, length, chunk type
WANDB_FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
WANDB_LAST_CHUNKS = (1, 4)  # FULL, LAST: a record ends


def tensorboard_events(folder: Path) -> EventAccumulator:
    return EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0}).Reload()


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    events = tensorboard_events(folder)
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def mlflow_scalars(client, run_id: str, names) -> dict[str, list[tuple[int, float]]]:
    return {name: sorted((metric.step, metric.value) for metric in client.get_metric_history(run_id, name))
            for name in names}


def csv_scalars(files) -> dict[str, list[tuple[int, float]]]:
    """{name: [(step, value)]} of Lightning CSV logs (``metrics.csv`` files, in order)."""
    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in files:
        with open(path, newline="") as file:
            for row in csv.DictReader(file):
                for name, value in row.items():
                    if name != "step" and value != "":
                        scalars.setdefault(name, []).append((int(row["step"]), float(value)))
    return scalars


def wandb_records(path: Path):
    """The ``wandb_internal_pb2.Record`` messages of a ``run-<id>.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert WANDB_FILE_HEADER.unpack_from(data)[0] == b":W&B", f"{path} is not a W&B run file"
    position, pending = WANDB_FILE_HEADER.size, b""
    while position + WANDB_CHUNK_HEADER.size <= len(data):
        left_in_block = WANDB_BLOCK - position % WANDB_BLOCK
        if left_in_block < WANDB_CHUNK_HEADER.size:  # a block's tail too short for a header is padding
            position += left_in_block
            continue
        _, length, kind = WANDB_CHUNK_HEADER.unpack_from(data, position)
        if kind == 0:  # zero padding to the end of the block
            position += left_in_block
            continue
        start = position + WANDB_CHUNK_HEADER.size
        pending += data[start:start + length]
        position = start + length
        if kind in WANDB_LAST_CHUNKS:
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def _items(items) -> dict:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def wandb_offline_run(folder: Path) -> dict:
    """{"folder", "id", "group", "project", "name", "history": [row dicts], "config": {key: value}} of an offline run
    folder (``<save_dir>/wandb/offline-run-<time>-<id>``; logged files are under its ``files/``)."""
    (path,) = folder.glob("run-*.wandb")
    run = {"folder": folder, "history": [], "config": {}}
    for record in wandb_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(id=record.run.run_id, group=record.run.run_group, project=record.run.project,
                       name=record.run.display_name)
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "config":
            run["config"].update({key: value.get("value", value) if isinstance(value, dict) else value
                                  for key, value in _items(record.config.update).items()})
    return run
