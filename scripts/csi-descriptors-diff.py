#!/usr/bin/env python3
"""Compare convoy's csi.proto with the official CSI csi.proto, descriptor by descriptor.

Usage: check.py OURS.pb OFFICIAL.pb
Both arguments are FileDescriptorSets made with
  protoc --include_imports --descriptor_set_out=X.pb csi.proto

Everything in package csi.v1 that reaches the wire or the gRPC method path is
compared: services and methods (name, input/output type, streaming flags),
messages recursively (fields: name, number, type, type_name, label,
proto3_optional, oneof by name, default, json_name, known field options such as
packed; nested messages; nested enums; oneofs; map entries; reserved ranges and
names; extension ranges), and top-level enums (values, numbers, reserved).
Custom option extensions (csi_secret, alpha_*) are not wire-relevant: they are
ignored in the comparison and only listed as information.

Prints every difference; exits 1 if there is any, 0 otherwise (2 on bad usage).
"""
import sys

from google.protobuf import descriptor_pb2

PACKAGE = "csi.v1"

FIELD_TYPES = {v: k for k, v in descriptor_pb2.FieldDescriptorProto.Type.items()}
FIELD_LABELS = {v: k for k, v in descriptor_pb2.FieldDescriptorProto.Label.items()}


def load(path):
    fds = descriptor_pb2.FileDescriptorSet()
    with open(path, "rb") as f:
        fds.ParseFromString(f.read())
    files = [f for f in fds.file if f.package == PACKAGE]
    if not files:
        sys.exit(f"{path}: no file with package {PACKAGE}")
    return files


def known_options(opts):
    """Standard (non-extension) options that are set, as a comparable dict."""
    return {fd.name: repr(v) for fd, v in opts.ListFields() if not fd.is_extension}


def custom_option_numbers(opts):
    """Numbers of unknown (custom extension) options set on a descriptor."""
    try:
        from google.protobuf import unknown_fields
        return sorted({u.field_number for u in unknown_fields.UnknownFieldSet(opts)})
    except Exception:  # older protobuf: fall back to nothing
        return []


def norm_field(f, oneof_names):
    return {
        "number": f.number,
        "type": FIELD_TYPES.get(f.type, f.type),
        "type_name": f.type_name,
        "label": FIELD_LABELS.get(f.label, f.label),
        "proto3_optional": f.proto3_optional,
        "oneof": oneof_names[f.oneof_index] if f.HasField("oneof_index") else None,
        "default_value": f.default_value if f.HasField("default_value") else None,
        "json_name": f.json_name,
        "extendee": f.extendee or None,
        "options": known_options(f.options),
    }


def norm_enum(e):
    return {
        "values": {v.name: {"number": v.number, "options": known_options(v.options)} for v in e.value},
        "reserved_ranges": sorted((r.start, r.end) for r in e.reserved_range),
        "reserved_names": sorted(e.reserved_name),
        "options": known_options(e.options),
    }


def norm_message(m):
    oneof_names = [o.name for o in m.oneof_decl]
    return {
        "fields": {f.name: norm_field(f, oneof_names) for f in m.field},
        "oneofs": {o.name: sorted(f.name for f in m.field
                                   if f.HasField("oneof_index") and oneof_names[f.oneof_index] == o.name)
                   for o in m.oneof_decl},
        "nested_messages": {n.name: norm_message(n) for n in m.nested_type},
        "enums": {e.name: norm_enum(e) for e in m.enum_type},
        "extensions": {x.name: norm_field(x, oneof_names) for x in m.extension},
        "extension_ranges": sorted((r.start, r.end) for r in m.extension_range),
        "reserved_ranges": sorted((r.start, r.end) for r in m.reserved_range),
        "reserved_names": sorted(m.reserved_name),
        "options": known_options(m.options),  # includes map_entry for map fields
    }


def norm_service(s):
    return {
        "methods": {
            mt.name: {
                "input_type": mt.input_type,
                "output_type": mt.output_type,
                "client_streaming": mt.client_streaming,
                "server_streaming": mt.server_streaming,
                "options": known_options(mt.options),
            }
            for mt in s.method
        },
        "options": known_options(s.options),
    }


def norm_files(files):
    out = {"services": {}, "messages": {}, "enums": {}, "syntax": sorted({f.syntax for f in files})}
    for f in files:
        for s in f.service:
            out["services"][s.name] = norm_service(s)
        for m in f.message_type:
            out["messages"][m.name] = norm_message(m)
        for e in f.enum_type:
            out["enums"][e.name] = norm_enum(e)
    return out


def diff(path, ours, official, out):
    """Recursively diff two normalized structures, appending messages to out."""
    if isinstance(ours, dict) and isinstance(official, dict):
        for k in sorted(set(ours) | set(official), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in ours:
                out.append(f"MISSING in ours: {p} = {official[k]!r}"[:400])
            elif k not in official:
                out.append(f"EXTRA in ours:   {p} = {ours[k]!r}"[:400])
            else:
                diff(p, ours[k], official[k], out)
    elif ours != official:
        out.append(f"DIFFERENT: {path}: ours={ours!r} official={official!r}")


def count(n):
    msgs = 0
    enums = len(n["enums"])
    fields = 0
    values = sum(len(e["values"]) for e in n["enums"].values())

    def walk(m):
        nonlocal msgs, enums, fields, values
        msgs += 1
        fields += len(m["fields"])
        enums += len(m["enums"])
        values += sum(len(e["values"]) for e in m["enums"].values())
        for c in m["nested_messages"].values():
            walk(c)

    for m in n["messages"].values():
        walk(m)
    methods = sum(len(s["methods"]) for s in n["services"].values())
    return (f"{len(n['services'])} services, {methods} methods, {msgs} messages (incl. nested/map entries), "
            f"{fields} fields, {enums} enums, {values} enum values")


def custom_annotations(files):
    """(kind, full name, extension numbers) for every custom option set in the official file."""
    names = {1059: "csi_secret", 1060: "alpha"}
    found = []

    def note(kind, name, opts):
        nums = custom_option_numbers(opts)
        if nums:
            found.append(f"{kind} {name}: " + ", ".join(names.get(n, str(n)) for n in nums))

    def walk_msg(prefix, m):
        full = f"{prefix}.{m.name}"
        note("message", full, m.options)
        for f in m.field:
            note("field", f"{full}.{f.name}", f.options)
        for e in m.enum_type:
            walk_enum(full, e)
        for n in m.nested_type:
            walk_msg(full, n)

    def walk_enum(prefix, e):
        full = f"{prefix}.{e.name}"
        note("enum", full, e.options)
        for v in e.value:
            note("enum value", f"{full}.{v.name}", v.options)

    for f in files:
        for s in f.service:
            note("service", s.name, s.options)
            for mt in s.method:
                note("method", f"{s.name}.{mt.name}", mt.options)
        for m in f.message_type:
            walk_msg(PACKAGE, m)
        for e in f.enum_type:
            walk_enum(PACKAGE, e)
    return found


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    ours_files, official_files = load(argv[1]), load(argv[2])
    ours, official = norm_files(ours_files), norm_files(official_files)

    diffs = []
    diff("", ours, official, diffs)

    print(f"ours:     {count(ours)}")
    print(f"official: {count(official)}")
    ours_deps = sorted({d for f in ours_files for d in f.dependency})
    print(f"ours imports: {', '.join(ours_deps)}")
    ignored = sorted(x.name for f in official_files for x in f.extension)
    if ignored:
        print(f"ignored (official option extensions, not on the wire): {', '.join(ignored)}")
    ann = custom_annotations(official_files)
    if ann:
        print(f"official custom annotations (informational, {len(ann)}):")
        for a in ann:
            print(f"  {a}")
    ours_ann = custom_annotations(ours_files)
    for a in ours_ann:
        diffs.append(f"EXTRA custom annotation in ours: {a}")

    if diffs:
        print(f"\n{len(diffs)} difference(s):")
        for d in diffs:
            print(f"  {d}")
        return 1
    print("\nno differences: wire compatible")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
