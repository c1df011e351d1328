#!/bin/sh
# check_two_hosts.sh MPIRUN TEST_DIST: test_dist's checks across two
# "hosts": two network namespaces joined by a veth pair, Open MPI's TCP
# transport between them (btl tcp, its control channel too), the second
# rank launched by mpirun's remote launch through `ip netns exec` (a
# plm_rsh_agent script standing in for ssh). Skipped (exit 77) with the
# reason where the machine forbids network namespaces.
set -u
mpirun=$1 exe=$2
skip() { echo "skipped: $*"; exit 77; }
command -v ip >/dev/null 2>&1 || skip "no ip(8) (iproute2)"
[ "$(id -u)" = 0 ] || skip "network namespaces need root"
tag=lg$$
a=${tag}a b=${tag}b net=10.$((64 + $$ % 64)).$(($$ / 64 % 250)).
dir=$(mktemp -d)
cleanup() { ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
ip netns add "$a" 2>/dev/null || skip "this machine forbids network namespaces (ip netns add failed)"
ip netns add "$b" || skip "ip netns add failed"
ip link add "${tag}va" type veth peer name "${tag}vb" || skip "no veth pairs here"
ip link set "${tag}va" netns "$a" && ip link set "${tag}vb" netns "$b" &&
    ip -n "$a" addr add "${net}1/24" dev "${tag}va" && ip -n "$b" addr add "${net}2/24" dev "${tag}vb" &&
    ip -n "$a" link set "${tag}va" up && ip -n "$b" link set "${tag}vb" up &&
    ip -n "$a" link set lo up && ip -n "$b" link set lo up || { echo "FAILED: setting up the link"; exit 1; }
cat >"$dir/agent" <<AGENT
#!/bin/sh
# mpirun's launch agent: "agent HOST COMMAND..." runs COMMAND in HOST's namespace
host=\$1; shift
case \$host in ${net}1) ns=$a ;; ${net}2) ns=$b ;; *) echo "unknown host \$host" >&2; exit 1 ;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
chmod +x "$dir/agent"
# the rank in namespace b sees only b's addresses: rank 1 prints them
ip netns exec "$a" timeout 120 "$mpirun" --allow-run-as-root --oversubscribe \
    --mca plm_rsh_agent "$dir/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include "${net}0/24" --mca oob_tcp_if_include "${net}0/24" \
    --host "${net}1:1,${net}2:1" -np 2 \
    sh -c 'echo "rank $OMPI_COMM_WORLD_RANK on $(ip -br -4 addr | grep -o "[0-9.]*/24")"' 2>/dev/null
ip netns exec "$a" timeout 120 "$mpirun" --allow-run-as-root --oversubscribe \
    --mca plm_rsh_agent "$dir/agent" --mca btl tcp,self \
    --mca btl_tcp_if_include "${net}0/24" --mca oob_tcp_if_include "${net}0/24" \
    --host "${net}1:1,${net}2:1" -np 2 "$exe" >"$dir/out" 2>&1
rc=$?
grep -v setpgid "$dir/out" # Open MPI's harmless warning about process groups in namespaces
[ "$rc" = 0 ] || echo "FAILED: mpirun exit $rc"
exit "$rc"
