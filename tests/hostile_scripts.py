"""Training scripts that attack the platform, shared by the local and the Ray isolation tests."""

ESCAPE = r"""
    import json, os, subprocess, sys, nsml
    def run(*argv):
        try:
            return subprocess.run(argv, capture_output=True, timeout=30).returncode
        except OSError as exc:
            return f"oserror {exc.errno}"
    def write(path):
        try:
            with open(path, "w") as f:
                f.write("poison")
            return "written"
        except OSError as exc:
            return f"refused {exc.errno}"
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
    train = os.path.join(nsml.DATASET_PATH, "train")
    demo = os.path.join(os.path.dirname(nsml.__file__), "datasets", "demo")
    report = {
        "cap_eff": status["CapEff"].strip(),
        "uid": os.getuid(),
        "remount_train": run("mount", "-o", "remount,bind,rw", train),
        "write_train": write(os.path.join(train, "poison")),
        "umount_train": run("umount", train),
        "unshare_user": run("unshare", "-Ur", "true"),
        "unshare_mount": run("unshare", "-m", "true"),
        "write_python": write(os.path.join(os.path.dirname(os.__file__), "poison.pth")),
        "write_platform": write(os.path.join(os.path.dirname(nsml.__file__), "poison.py")),
        "write_usr": write("/usr/poison"),
        "write_cache": write("/nsml/cache/poison"),
        "demo_labels_visible": os.path.exists(demo),
    }
    print("ESCAPE " + json.dumps(report), flush=True)
"""

MEMORY_HOG = r"""
    blocks = []
    for _ in range(64):
        block = bytearray(16 * 1024 * 1024)
        block[::4096] = b"x" * len(block[::4096])
        blocks.append(block)
    print("survived", flush=True)
"""
