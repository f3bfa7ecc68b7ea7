"""The probe strings as the code built them before issue 10 moved them into provision/commands/
(captured from commit 93f1df6 by running the old builders): the new builders must reproduce them byte
for byte. (FACTS_SCRIPT: as issue 12 rewrote it, deliberately. Issue 14 added the NVIDIA probe's gpu_cgroup
section after `boot`.)"""

PROXY_ENV = 'env DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 https_proxy=http://proxy:3128'

FACTS_SCRIPT = (  # issue 12 changed it deliberately (host CPU halved: builtins, no unneeded command; then no
    # uname/timeout forks, no systemctl without docker)
    '# provision facts script, format 1: read-only, POSIX sh, never fails as a whole.\n'
    'PATH="${PATH:-/usr/bin:/bin}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"\n'
    'LC_ALL=C\n'
    'export PATH LC_ALL\n'
    '\n'
    '_pf_has() { command -v "$1" >/dev/null 2>&1; }\n'
    '\n'
    '# _pf_emit NAME RC TEXT: print one section.\n'
    '_pf_emit() {\n'
    '    printf \'@@provision-fact %s\\n\' "$1"\n'
    '    if [ -n "$3" ]; then printf \'%s\\n\' "$3"; fi\n'
    '    printf \'@@provision-rc %s %s\\n\' "$1" "$2"\n'
    '}\n'
    '\n'
    '# _pf_skip NAME WHY: a section whose command was not run, its answer not being needed (rc -1).\n'
    '_pf_skip() { _pf_emit "$1" -1 "skipped: $2"; }\n'
    '\n'
    '# _pf_run NAME SECONDS|- CMD [ARG...]: run CMD with stdin from /dev/null and stderr merged into\n'
    '# stdout, under `timeout SECONDS` when that exists; rc 127 with no text when CMD is not installed.\n'
    '_pf_run() {\n'
    '    _pf_n=$1\n'
    '    _pf_t=$2\n'
    '    shift 2\n'
    '    if ! _pf_has "$1"; then\n'
    '        _pf_rc=127\n'
    '        _pf_emit "$_pf_n" 127 ""\n'
    '        return 0\n'
    '    fi\n'
    '    if [ "$_pf_t" != - ] && _pf_has timeout; then\n'
    '        _pf_o=$(timeout "$_pf_t" "$@" </dev/null 2>&1)\n'
    '    else\n'
    '        _pf_o=$("$@" </dev/null 2>&1)\n'
    '    fi\n'
    '    _pf_rc=$?\n'
    '    _pf_emit "$_pf_n" "$_pf_rc" "$_pf_o"\n'
    '}\n'
    '\n'
    "# _pf_file NAME PATH: the file's content; rc 127 with no text when it does not exist.\n"
    '_pf_file() {\n'
    '    if [ -e "$2" ]; then\n'
    '        _pf_o=$(cat -- "$2" </dev/null 2>&1)\n'
    '        _pf_rc=$?\n'
    '    else\n'
    '        _pf_o=\n'
    '        _pf_rc=127\n'
    '    fi\n'
    '    _pf_emit "$1" "$_pf_rc" "$_pf_o"\n'
    '}\n'
    '\n'
    '# _pf_flag NAME TEST-ARGS...: "yes" when `test TEST-ARGS...` holds, else "no".\n'
    '_pf_flag() {\n'
    '    _pf_n=$1\n'
    '    shift\n'
    '    if test "$@"; then _pf_emit "$_pf_n" 0 yes; else _pf_emit "$_pf_n" 0 no; fi\n'
    '}\n'
    '\n'
    '# The MemTotal line of /proc/meminfo (the only one read).\n'
    '_pf_memtotal() {\n'
    '    while read -r _pf_k _pf_v _pf_u; do\n'
    '        if [ "$_pf_k" = MemTotal: ]; then\n'
    '            printf \'%s %s %s\\n\' "$_pf_k" "$_pf_v" "$_pf_u"\n'
    '            return 0\n'
    '        fi\n'
    '    done </proc/meminfo\n'
    '    return 1\n'
    '}\n'
    '\n'
    '# The kernel release, as `uname -r` prints it (no fork).\n'
    '_pf_osrelease() {\n'
    '    read -r _pf_k </proc/sys/kernel/osrelease && printf \'%s\\n\' "$_pf_k"\n'
    '}\n'
    '\n'
    '# One "ADDRESS VENDOR DEVICE CLASS" line per PCI device, read from sysfs (no lspci needed).\n'
    '_pf_pci() {\n'
    '    for _pf_d in /sys/bus/pci/devices/*; do\n'
    '        [ -r "$_pf_d/vendor" ] || continue\n'
    '        _pf_ven=\n'
    '        _pf_dev=\n'
    '        _pf_cls=\n'
    '        {\n'
    '            read -r _pf_ven <"$_pf_d/vendor"\n'
    '            read -r _pf_dev <"$_pf_d/device"\n'
    '            read -r _pf_cls <"$_pf_d/class"\n'
    '        } 2>/dev/null\n'
    '        printf \'%s %s %s %s\\n\' "${_pf_d##*/}" "$_pf_ven" "$_pf_dev" "$_pf_cls"\n'
    '    done\n'
    '    return 0\n'
    '}\n'
    '\n'
    '# NVSwitch device nodes, one a line.\n'
    '_pf_nvswitch() {\n'
    '    for _pf_f in /dev/nvidia-nvswitch*; do\n'
    '        if [ -e "$_pf_f" ]; then printf \'%s\\n\' "$_pf_f"; fi\n'
    '    done\n'
    '    return 0\n'
    '}\n'
    '\n'
    '# _pf_procs COMM: PIDs of the processes whose /proc/PID/comm is COMM, one a line.\n'
    '_pf_procs() {\n'
    '    for _pf_c in /proc/[0-9]*/comm; do\n'
    '        _pf_p=\n'
    '        { read -r _pf_p <"$_pf_c"; } 2>/dev/null\n'
    '        if [ "$_pf_p" = "$1" ]; then\n'
    '            _pf_q=${_pf_c%/comm}\n'
    '            printf \'%s\\n\' "${_pf_q#/proc/}"\n'
    '        fi\n'
    '    done\n'
    '    return 0\n'
    '}\n'
    '\n'
    "printf '%s\\n' '@@provision-facts-begin 1'\n"
    '\n'
    'if [ -e /etc/os-release ]; then\n'
    '    _pf_file os_release /etc/os-release\n'
    'else\n'
    '    _pf_file os_release /usr/lib/os-release\n'
    'fi\n'
    '_pf_run arch_dpkg - dpkg --print-architecture\n'
    'if [ "$_pf_rc" = 0 ] && [ -n "$_pf_o" ]; then\n'
    '    _pf_skip uname_m "dpkg answered"\n'
    'else\n'
    '    _pf_run uname_m - uname -m\n'
    'fi\n'
    'if [ -r /proc/sys/kernel/osrelease ]; then\n'
    '    _pf_run uname_r - _pf_osrelease\n'
    'else\n'
    '    _pf_run uname_r - uname -r\n'
    'fi\n'
    'if _pf_has nproc; then\n'
    '    _pf_run nproc - nproc\n'
    'else\n'
    '    _pf_run nproc - getconf _NPROCESSORS_ONLN\n'
    'fi\n'
    '_pf_run meminfo - _pf_memtotal\n'
    '_pf_flag systemd -d /run/systemd/system\n'
    '_pf_run cloud_init 20 cloud-init status\n'
    '_pf_flag reboot_required -e /var/run/reboot-required\n'
    '\n'
    'if [ -d /sys/firmware/efi ]; then\n'
    '    _pf_run mokutil 10 mokutil --sb-state\n'
    'else\n'
    '    _pf_skip mokutil "not EFI"\n'
    'fi\n'
    '_pf_flag efi -d /sys/firmware/efi\n'
    '_pf_v=/sys/firmware/efi/efivars/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c\n'
    'if [ -e "$_pf_v" ]; then\n'
    '    _pf_run secureboot_efivar 10 od -An -tx1 -v "$_pf_v"\n'
    'else\n'
    '    _pf_emit secureboot_efivar 127 ""\n'
    'fi\n'
    '\n'
    '_pf_run nvidia_smi_query 20 nvidia-smi --query-gpu=index,name,uuid,memory.total,pci.bus_id,pci.device_id,driver_version --format=csv,noheader,nounits\n'
    'case $_pf_rc in\n'
    '124 | 137)\n'
    '    # A hung driver: do not wait for it again.\n'
    '    _pf_emit nvidia_smi 124 ""\n'
    '    ;;\n'
    '*)\n'
    '    _pf_run nvidia_smi 20 nvidia-smi\n'
    '    ;;\n'
    'esac\n'
    '_pf_run pci_devices - _pf_pci\n'
    'case $_pf_o in\n'
    '*" 0x10de "*)\n'
    '    _pf_run lspci_nvidia 10 lspci -D -nn -d 10de:\n'
    '    ;;\n'
    '*)\n'
    '    _pf_skip lspci_nvidia "no NVIDIA PCI device"\n'
    '    ;;\n'
    'esac\n'
    '_pf_run nvswitch_dev - _pf_nvswitch\n'
    '\n'
    '# One `docker info` (server version and runtimes); `docker --version` and `dockerd --version` only when\n'
    "# the daemon did not answer it (else the server's version is the one reported); printed in the sections' order.\n"
    'if ! _pf_has docker; then\n'
    '    _pf_di_rc=127\n'
    '    _pf_di=\n'
    'elif _pf_has timeout; then\n'
    "    _pf_di=$(timeout 15 docker info --format '{{.ServerVersion}} {{json .Runtimes}}' </dev/null 2>&1)\n"
    '    _pf_di_rc=$?\n'
    'else\n'
    "    _pf_di=$(docker info --format '{{.ServerVersion}} {{json .Runtimes}}' </dev/null 2>&1)\n"
    '    _pf_di_rc=$?\n'
    'fi\n'
    'if [ "$_pf_di_rc" = 0 ]; then\n'
    '    _pf_skip docker_client_version "the daemon answered"\n'
    '    _pf_skip dockerd_version "the daemon answered"\n'
    '    _pf_emit docker_server_version 0 "${_pf_di%% *}"\n'
    '    _pf_emit docker_runtimes 0 "${_pf_di#* }"\n'
    'else\n'
    '    _pf_run docker_client_version 10 docker --version\n'
    '    _pf_run dockerd_version 10 dockerd --version\n'
    '    _pf_emit docker_server_version "$_pf_di_rc" "$_pf_di"\n'
    '    _pf_emit docker_runtimes "$_pf_di_rc" "$_pf_di"\n'
    'fi\n'
    'if ! _pf_has docker && ! _pf_has dockerd; then\n'
    '    _pf_skip docker_active "docker is not installed"\n'
    '    _pf_skip dockerd_processes "docker is not installed"\n'
    'elif [ -d /run/systemd/system ]; then\n'
    '    _pf_run docker_active 10 systemctl is-active docker\n'
    '    _pf_skip dockerd_processes "systemd"\n'
    'else\n'
    '    _pf_emit docker_active 127 ""\n'
    '    _pf_run dockerd_processes - _pf_procs dockerd\n'
    'fi\n'
    '_pf_file daemon_json /etc/docker/daemon.json\n'
    '\n'
    "printf '%s\\n' '@@provision-facts-end'\n"
    'exit 0\n'
)

PREAMBLE = 'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'

MARKERS = ('@@provision-fact ', '@@provision-rc ', '@@provision-facts-begin', '@@provision-facts-end')

PROBE_SCRIPT = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact file'\n"
    '_out=$( ( cat /etc/x.json\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc file $_rc"\n'
    "echo '@@provision-fact fails'\n"
    '_out=$( ( echo oops >&2; exit 3\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc fails $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

PROBE_SCRIPT_EMPTY = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-facts-end'\n"
)

DPKG_STATE_SECTION = ('dpkg_state', '[ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] && echo interrupted=updates; dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; for u in $(systemctl list-units --plain --no-legend --state=active,activating \'provision-apt-*\' 2>/dev/null | awk \'{print $1}\'); do echo "unit=$u"; done; true')

DOCKER_HOST_PROBE = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact os_release'\n"
    '_out=$( ( cat /etc/os-release\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc os_release $_rc"\n'
    "echo '@@provision-fact arch'\n"
    '_out=$( ( dpkg --print-architecture\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc arch $_rc"\n'
    "echo '@@provision-fact systemd'\n"
    '_out=$( ( [ -d /run/systemd/system ] && echo yes || echo no\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc systemd $_rc"\n'
    "echo '@@provision-fact cloud_init'\n"
    '_out=$( ( command -v cloud-init >/dev/null || exit 127; cloud-init status\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc cloud_init $_rc"\n'
    "echo '@@provision-fact packages'\n"
    "_out=$( ( dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' containerd containerd.io docker-buildx-plugin docker-ce docker-ce-cli docker-ce-rootless-extras docker-compose docker-compose-plugin docker-compose-v2 docker-doc docker.io podman-docker runc 2>/dev/null; true\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc packages $_rc"\n'
    "echo '@@provision-fact snap'\n"
    '_out=$( ( command -v snap >/dev/null || exit 127; snap list docker 2>/dev/null | tail -n +2\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc snap $_rc"\n'
    "echo '@@provision-fact keyring'\n"
    "_out=$( ( [ -f /etc/apt/keyrings/docker.asc ] || exit 1; sha256sum < /etc/apt/keyrings/docker.asc | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc keyring $_rc"\n'
    "echo '@@provision-fact remote_key'\n"
    '_out=$( ( . /etc/os-release; url=$(printf %s https://download.docker.com/linux/__DISTRO__/gpg | sed "s|__DISTRO__|$ID|"); t=$(mktemp) && env DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 https_proxy=http://proxy:3128 curl -fsSL --retry 2 --max-time 30 -o "$t" "$url"; rc=$?; [ $rc = 0 ] && sha256sum < "$t" | cut -d\' \' -f1; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_key $_rc"\n'
    "echo '@@provision-fact sources'\n"
    '_out=$( ( cat /etc/apt/sources.list.d/docker.sources\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc sources $_rc"\n'
    "echo '@@provision-fact stale'\n"
    '_out=$( ( for f in /etc/apt/sources.list.d/docker.list /etc/apt/trusted.gpg.d/docker.asc /etc/apt/trusted.gpg.d/docker.gpg /usr/share/keyrings/docker-archive-keyring.gpg /etc/apt/sources.list.d/download_docker_com_linux_*.list; do [ -e "$f" ] && echo "$f"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc stale $_rc"\n'
    "echo '@@provision-fact daemon_json'\n"
    '_out=$( ( cat /etc/docker/daemon.json\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc daemon_json $_rc"\n'
    "echo '@@provision-fact docker_group'\n"
    '_out=$( ( getent group docker\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc docker_group $_rc"\n'
    "echo '@@provision-fact users'\n"
    '_out=$( ( printf \'%s %s\\n\' alice "$(id -u alice 2>/dev/null || echo none)" ; printf \'%s %s\\n\' \'o\'"\'"\'brien\' "$(id -u \'o\'"\'"\'brien\' 2>/dev/null || echo none)"\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc users $_rc"\n'
    "echo '@@provision-fact service'\n"
    '_out=$( ( systemctl show docker -p UnitFileState -p ActiveState -p ActiveEnterTimestampMonotonic\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc service $_rc"\n'
    "echo '@@provision-fact dpkg_state'\n"
    '_out=$( ( [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] && echo interrupted=updates; dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; for u in $(systemctl list-units --plain --no-legend --state=active,activating \'provision-apt-*\' 2>/dev/null | awk \'{print $1}\'); do echo "unit=$u"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc dpkg_state $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

DOCKER_HOST_PROBE_NO_USERS = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact os_release'\n"
    '_out=$( ( cat /etc/os-release\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc os_release $_rc"\n'
    "echo '@@provision-fact arch'\n"
    '_out=$( ( dpkg --print-architecture\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc arch $_rc"\n'
    "echo '@@provision-fact systemd'\n"
    '_out=$( ( [ -d /run/systemd/system ] && echo yes || echo no\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc systemd $_rc"\n'
    "echo '@@provision-fact cloud_init'\n"
    '_out=$( ( command -v cloud-init >/dev/null || exit 127; cloud-init status\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc cloud_init $_rc"\n'
    "echo '@@provision-fact packages'\n"
    "_out=$( ( dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' containerd containerd.io docker-buildx-plugin docker-ce docker-ce-cli docker-ce-rootless-extras docker-compose docker-compose-plugin docker-compose-v2 docker-doc docker.io podman-docker runc 2>/dev/null; true\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc packages $_rc"\n'
    "echo '@@provision-fact snap'\n"
    '_out=$( ( command -v snap >/dev/null || exit 127; snap list docker 2>/dev/null | tail -n +2\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc snap $_rc"\n'
    "echo '@@provision-fact keyring'\n"
    "_out=$( ( [ -f /etc/apt/keyrings/docker.asc ] || exit 1; sha256sum < /etc/apt/keyrings/docker.asc | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc keyring $_rc"\n'
    "echo '@@provision-fact remote_key'\n"
    '_out=$( ( . /etc/os-release; url=$(printf %s http://mirror.invalid/docker/gpg | sed "s|__DISTRO__|$ID|"); t=$(mktemp) && env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 2 --max-time 30 -o "$t" "$url"; rc=$?; [ $rc = 0 ] && sha256sum < "$t" | cut -d\' \' -f1; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_key $_rc"\n'
    "echo '@@provision-fact sources'\n"
    '_out=$( ( cat /etc/apt/sources.list.d/docker.sources\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc sources $_rc"\n'
    "echo '@@provision-fact stale'\n"
    '_out=$( ( for f in /etc/apt/sources.list.d/docker.list /etc/apt/trusted.gpg.d/docker.asc /etc/apt/trusted.gpg.d/docker.gpg /usr/share/keyrings/docker-archive-keyring.gpg /etc/apt/sources.list.d/download_docker_com_linux_*.list; do [ -e "$f" ] && echo "$f"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc stale $_rc"\n'
    "echo '@@provision-fact daemon_json'\n"
    '_out=$( ( cat /etc/docker/daemon.json\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc daemon_json $_rc"\n'
    "echo '@@provision-fact docker_group'\n"
    '_out=$( ( getent group docker\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc docker_group $_rc"\n'
    "echo '@@provision-fact users'\n"
    '_out=$( ( true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc users $_rc"\n'
    "echo '@@provision-fact service'\n"
    '_out=$( ( systemctl show docker -p UnitFileState -p ActiveState -p ActiveEnterTimestampMonotonic\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc service $_rc"\n'
    "echo '@@provision-fact dpkg_state'\n"
    '_out=$( ( [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] && echo interrupted=updates; dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; for u in $(systemctl list-units --plain --no-legend --state=active,activating \'provision-apt-*\' 2>/dev/null | awk \'{print $1}\'); do echo "unit=$u"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc dpkg_state $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

NVIDIA_HOST_PROBE = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact packages'\n"
    "_out=$( ( dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools libnvidia-container1 2>/dev/null; true\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc packages $_rc"\n'
    "echo '@@provision-fact keyring'\n"
    "_out=$( ( [ -f /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg ] || exit 1; sha256sum < /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc keyring $_rc"\n'
    "echo '@@provision-fact remote_key'\n"
    '_out=$( ( t=$(mktemp); env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 2 --max-time 30 -o "$t" https://nvidia.github.io/libnvidia-container/gpgkey && gpg --batch --dearmor < "$t" | sha256sum | cut -d\' \' -f1; rc=$?; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_key $_rc"\n'
    "echo '@@provision-fact list'\n"
    "_out=$( ( [ -f /etc/apt/sources.list.d/nvidia-container-toolkit.list ] || exit 1; sha256sum < /etc/apt/sources.list.d/nvidia-container-toolkit.list | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc list $_rc"\n'
    "echo '@@provision-fact remote_list'\n"
    '_out=$( ( t=$(mktemp); env DEBIAN_FRONTEND=noninteractive curl -fsSL --retry 2 --max-time 30 -o "$t" https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list && sed \'s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g\' "$t" | sha256sum | cut -d\' \' -f1; rc=$?; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_list $_rc"\n'
    "echo '@@provision-fact daemon_json'\n"
    '_out=$( ( cat /etc/docker/daemon.json\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc daemon_json $_rc"\n'
    "echo '@@provision-fact cdi'\n"
    '_out=$( ( [ -f /var/run/cdi/nvidia.yaml ] && echo yes || echo no\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc cdi $_rc"\n'
    "echo '@@provision-fact boot'\n"
    '_out=$( ( printf \'%s-%s\\n\' "$(cat /proc/sys/kernel/random/boot_id)" "$(cut -d\' \' -f22 /proc/1/stat)"\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc boot $_rc"\n'
    "echo '@@provision-fact gpu_cgroup'\n"
    '_out=$( ( printf \'cgroup_driver=%s\\n\' "$(timeout 30 docker info --format \'{{.CgroupDriver}}\' 2>/dev/null)"; [ -f /lib/udev/rules.d/71-nvidia-dev-char.rules ] && echo udev_rule=yes || echo udev_rule=no; printf \'dev_char_links=%s\\n\' "$(find /dev/char -maxdepth 1 -lname \'*nvidia*\' 2>/dev/null | wc -l)"\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc gpu_cgroup $_rc"\n'
    "echo '@@provision-fact dpkg_state'\n"
    '_out=$( ( [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] && echo interrupted=updates; dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; for u in $(systemctl list-units --plain --no-legend --state=active,activating \'provision-apt-*\' 2>/dev/null | awk \'{print $1}\'); do echo "unit=$u"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc dpkg_state $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

NVIDIA_HOST_PROBE_MIRROR = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact packages'\n"
    "_out=$( ( dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' nvidia-container-toolkit nvidia-container-toolkit-base libnvidia-container-tools libnvidia-container1 2>/dev/null; true\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc packages $_rc"\n'
    "echo '@@provision-fact keyring'\n"
    "_out=$( ( [ -f /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg ] || exit 1; sha256sum < /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc keyring $_rc"\n'
    "echo '@@provision-fact remote_key'\n"
    '_out=$( ( t=$(mktemp); env DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 https_proxy=http://proxy:3128 curl -fsSL --retry 2 --max-time 30 -o "$t" http://mirror.invalid/nvidia/gpgkey && gpg --batch --dearmor < "$t" | sha256sum | cut -d\' \' -f1; rc=$?; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_key $_rc"\n'
    "echo '@@provision-fact list'\n"
    "_out=$( ( [ -f /etc/apt/sources.list.d/nvidia-container-toolkit.list ] || exit 1; sha256sum < /etc/apt/sources.list.d/nvidia-container-toolkit.list | cut -d' ' -f1\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc list $_rc"\n'
    "echo '@@provision-fact remote_list'\n"
    '_out=$( ( t=$(mktemp); env DEBIAN_FRONTEND=noninteractive http_proxy=http://proxy:3128 https_proxy=http://proxy:3128 curl -fsSL --retry 2 --max-time 30 -o "$t" http://mirror.invalid/nvidia/stable/deb/nvidia-container-toolkit.list && sed \'s#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g\' "$t" | sha256sum | cut -d\' \' -f1; rc=$?; rm -f "$t"; exit $rc\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc remote_list $_rc"\n'
    "echo '@@provision-fact daemon_json'\n"
    '_out=$( ( cat /etc/docker/daemon.json\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc daemon_json $_rc"\n'
    "echo '@@provision-fact cdi'\n"
    '_out=$( ( [ -f /var/run/cdi/nvidia.yaml ] && echo yes || echo no\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc cdi $_rc"\n'
    "echo '@@provision-fact boot'\n"
    '_out=$( ( printf \'%s-%s\\n\' "$(cat /proc/sys/kernel/random/boot_id)" "$(cut -d\' \' -f22 /proc/1/stat)"\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc boot $_rc"\n'
    "echo '@@provision-fact gpu_cgroup'\n"
    '_out=$( ( printf \'cgroup_driver=%s\\n\' "$(timeout 30 docker info --format \'{{.CgroupDriver}}\' 2>/dev/null)"; [ -f /lib/udev/rules.d/71-nvidia-dev-char.rules ] && echo udev_rule=yes || echo udev_rule=no; printf \'dev_char_links=%s\\n\' "$(find /dev/char -maxdepth 1 -lname \'*nvidia*\' 2>/dev/null | wc -l)"\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc gpu_cgroup $_rc"\n'
    "echo '@@provision-fact dpkg_state'\n"
    '_out=$( ( [ -n "$(ls -A /var/lib/dpkg/updates 2>/dev/null)" ] && echo interrupted=updates; dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; for u in $(systemctl list-units --plain --no-legend --state=active,activating \'provision-apt-*\' 2>/dev/null | awk \'{print $1}\'); do echo "unit=$u"; done; true\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc dpkg_state $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

SWARM_PROBE = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact swarm'\n"
    "_out=$( ( command -v docker >/dev/null || exit 127; docker info --format '{{json .Swarm}}'\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc swarm $_rc"\n'
    "echo '@@provision-fact route'\n"
    '_out=$( ( command -v ip >/dev/null || exit 127; ip -4 route show default\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc route $_rc"\n'
    "echo '@@provision-fact addrs'\n"
    '_out=$( ( command -v ip >/dev/null || exit 127; ip -o -4 addr show scope global\n'
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc addrs $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

SWARM_CLUSTER_PROBE = (
    'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"; LC_ALL=C; export PATH LC_ALL\n'
    '\n'
    "echo '@@provision-facts-begin 1'\n"
    "echo '@@provision-fact swarm'\n"
    "_out=$( ( docker info --format '{{json .Swarm}}'\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc swarm $_rc"\n'
    "echo '@@provision-fact nodes'\n"
    "_out=$( ( docker node ls -q | xargs -r docker node inspect --format '{{.ID}} {{.Spec.Role}} {{json .Spec.Labels}}'\n"
    ') </dev/null 2>&1 ); _rc=$?\n'
    '[ -n "$_out" ] && printf \'%s\\n\' "$_out"\n'
    'echo "@@provision-rc nodes $_rc"\n'
    "echo '@@provision-facts-end'\n"
)

NVIDIA_SED = "sed 's#deb https://#deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] https://#g'"

WATCHED_PACKAGES = ['containerd', 'containerd.io', 'docker-buildx-plugin', 'docker-ce', 'docker-ce-cli', 'docker-ce-rootless-extras', 'docker-compose', 'docker-compose-plugin', 'docker-compose-v2', 'docker-doc', 'docker.io', 'podman-docker', 'runc']


# -- issue 12 (branch noop): the Docker install no-op's host CPU halved, deliberately: no `cat`, `cut`, `sed`,
# `ls`, no `dpkg --audit` and no `systemctl list-units` unless dpkg's status file or /run/systemd/transient says
# something is half-way. Each (before, after) pair is a literal substring replacement of the strings above.
def _sha(path: str) -> tuple[str, str]:
    return (f"[ -f {path} ] || exit 1; sha256sum < {path} | cut -d' ' -f1",
            f'[ -f {path} ] || exit 1; s=$(sha256sum < {path}) && echo "${{s%% *}}"')


def _read(path: str) -> tuple[str, str]:
    return (f"cat {path}\n", f"[ -f {path} ] || exit 1; while IFS= read -r l || [ -n \"$l\" ]; do "
                             f"printf '%s\\n' \"$l\"; done < {path}\n")


_NEW_DPKG_STATE = (
    'for f in /var/lib/dpkg/updates/* /var/lib/dpkg/updates/.[!.]*; do [ -e "$f" ] && '
    '{ echo interrupted=updates; break; }; done; '
    "grep -Eq '^Status: [a-z]+ ([a-z]+ (half-installed|unpacked|half-configured|triggers-awaited|triggers-pending)"
    "|reinstreq [a-z-]+)$' /var/lib/dpkg/status 2>/dev/null && "
    'dpkg --audit 2>/dev/null | grep -q . && echo interrupted=audit; '
    'for f in /run/systemd/transient/provision-apt-*; do [ -e "$f" ] || continue; '
    "for u in $(systemctl list-units --plain --no-legend --state=active,activating 'provision-apt-*' 2>/dev/null "
    "| awk '{print $1}'); do echo \"unit=$u\"; done; break; done; true")
ISSUE12_NOOP = [
    (DPKG_STATE_SECTION[1], _NEW_DPKG_STATE),
    _sha("/etc/apt/keyrings/docker.asc"),
    _sha("/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg"),
    _sha("/etc/apt/sources.list.d/nvidia-container-toolkit.list"),
    _read("/etc/os-release"), _read("/etc/apt/sources.list.d/docker.sources"),
    ('url=$(printf %s https://download.docker.com/linux/__DISTRO__/gpg | sed "s|__DISTRO__|$ID|"); ',
     'u=https://download.docker.com/linux/__DISTRO__/gpg; case $u in *__DISTRO__*) '
     'url="${u%%__DISTRO__*}$ID${u#*__DISTRO__}";; *) url=$u;; esac; '),
    ('url=$(printf %s http://mirror.invalid/docker/gpg | sed "s|__DISTRO__|$ID|"); ',
     'u=http://mirror.invalid/docker/gpg; case $u in *__DISTRO__*) '
     'url="${u%%__DISTRO__*}$ID${u#*__DISTRO__}";; *) url=$u;; esac; '),
]


def _noop(text: str, docker: bool) -> str:
    for old, new in ISSUE12_NOOP:
        text = text.replace(old, new)
    # daemon.json: read by the shell in the Docker probe only (the NVIDIA probe still runs `cat`)
    return text.replace(*_read("/etc/docker/daemon.json")) if docker else text


DPKG_STATE_SECTION = ("dpkg_state", _NEW_DPKG_STATE)
DOCKER_HOST_PROBE = _noop(DOCKER_HOST_PROBE, True)
DOCKER_HOST_PROBE_NO_USERS = _noop(DOCKER_HOST_PROBE_NO_USERS, True)
NVIDIA_HOST_PROBE = _noop(NVIDIA_HOST_PROBE, False)
NVIDIA_HOST_PROBE_MIRROR = _noop(NVIDIA_HOST_PROBE_MIRROR, False)


# -- issue 12 (branch dockernoop): the Docker probe's host CPU again, deliberately: one dpkg-query in a prelude
# answers the packages and (the `dpkg` package's Architecture) the architecture, no `dpkg --print-architecture`;
# the keyring's digest computed once; the service's enabled state from files when certain, `systemctl is-active`
# instead of `systemctl show` (whose ActiveEnterTimestampMonotonic nothing read). Literal replacements again.
_DOCKER_PRELUDE = (
    "_pq=$(dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\t${Architecture}\\n' dpkg "
    + " ".join(WATCHED_PACKAGES) + " 2>/dev/null)\n"
    "_pk=; [ -f /etc/apt/keyrings/docker.asc ] && _pk=$(sha256sum 2>/dev/null < /etc/apt/keyrings/docker.asc)\n")
_SHADOWS = " ".join(f"{d}/docker.service" for d in (
    "/etc/systemd/system.control", "/run/systemd/system.control", "/run/systemd/transient",
    "/run/systemd/generator.early", "/etc/systemd/system", "/etc/systemd/system.attached", "/run/systemd/system",
    "/run/systemd/system.attached", "/run/systemd/generator", "/usr/local/lib/systemd/system"))
DOCKERNOOP = [
    ("export PATH LC_ALL\n\n", "export PATH LC_ALL\n" + _DOCKER_PRELUDE + "\n"),
    ("echo '@@provision-fact arch'\n_out=$( ( dpkg --print-architecture\n) </dev/null 2>&1 ); _rc=$?\n"
     "[ -n \"$_out\" ] && printf '%s\\n' \"$_out\"\necho \"@@provision-rc arch $_rc\"\n", ""),
    ("dpkg-query -W -f='${Package}\\t${Version}\\t${db:Status-Abbrev}\\n' " + " ".join(WATCHED_PACKAGES)
     + " 2>/dev/null; true\n", "printf '%s' \"$_pq\"\n"),
    (_sha("/etc/apt/keyrings/docker.asc")[1],
     '[ -f /etc/apt/keyrings/docker.asc ] && [ -n "$_pk" ] || exit 1; echo "${_pk%% *}"'),
    ("systemctl show docker -p UnitFileState -p ActiveState -p ActiveEnterTimestampMonotonic\n",
     "[ -d /run/systemd/system ] || exit 1; "
     "u=; for f in /usr/lib/systemd/system/docker.service /lib/systemd/system/docker.service; do "
     'if [ -L "$f" ]; then break; elif [ -f "$f" ]; then u=$f; break; elif [ -e "$f" ]; then break; fi; done; '
     '[ /etc/systemd/system/multi-user.target.wants/docker.service -ef "$u" ] || u=; '
     f'for f in {_SHADOWS}; do [ -n "$u" ] || break; {{ [ -e "$f" ] || [ -L "$f" ]; }} && u=; done; '
     'if [ -n "$u" ]; then e=enabled; else e=$(systemctl is-enabled docker.service 2>/dev/null); fi; '
     'echo "UnitFileState=$e"; echo "ActiveState=$(systemctl is-active docker.service 2>/dev/null)"\n'),
]


def _dockernoop(text: str) -> str:
    for old, new in DOCKERNOOP:
        assert old in text, old
        text = text.replace(old, new)
    return text


DOCKER_HOST_PROBE = _dockernoop(DOCKER_HOST_PROBE)
DOCKER_HOST_PROBE_NO_USERS = _dockernoop(DOCKER_HOST_PROBE_NO_USERS)
