"""The Fabric side of the ad-hoc benchmark (bench/side_by_side.py): `uname -r` on every host of a JSON
host list, one thread per host (fabric.ThreadingGroup), keys checked against a known_hosts file.

  python bench/peers/fabric_adhoc.py HOSTS.json 'uname -r'

HOSTS.json: {"key": PATH, "known_hosts": PATH, "user": "root", "hosts": [[HOST, PORT], ...]}."""

import json
import sys

from fabric import ThreadingGroup

spec = json.loads(open(sys.argv[1]).read())
group = ThreadingGroup(*[f"{spec['user']}@{host}:{port}" for host, port in spec["hosts"]],
                       connect_kwargs={"key_filename": spec["key"], "look_for_keys": False, "allow_agent": False})
for connection in group:
    connection.client.load_system_host_keys(spec["known_hosts"])
results = group.run(sys.argv[2], hide=True, warn=True)
failed = 0
for connection, result in results.items():
    print(f"{connection.host}:{connection.port}: {result.stdout.strip()}")
    failed += result.exited != 0
group.close()
sys.exit(1 if failed or len(results) != len(spec["hosts"]) else 0)
