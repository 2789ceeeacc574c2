# moby/containers-common seccomp.json -> OCI linux.seccomp for x86_64, given the container's
# bounding capabilities ($caps): keeps the rules whose includes/excludes (arches, caps) match.
def arch_ok: (.includes.arches // []) as $a | ($a|length) == 0 or ($a | index("amd64")) != null;
def arch_not_excluded: ((.excludes.arches // []) | index("amd64")) == null;
def caps_ok: ((.includes.caps // []) | all(. as $c | $caps | index($c) != null));
def caps_not_excluded: ((.excludes.caps // []) | any(. as $c | $caps | index($c) != null)) | not;
{
  defaultAction: .defaultAction,
  defaultErrnoRet: .defaultErrnoRet,
  architectures: ([.archMap[] | select(.architecture == "SCMP_ARCH_X86_64") | [.architecture] + .subArchitectures] | add),
  syscalls: [.syscalls[] | select(arch_ok and arch_not_excluded and caps_ok and caps_not_excluded)
             | {names, action} + (if .errnoRet then {errnoRet} else {} end) + (if (.args // []) | length > 0 then {args} else {} end)]
}
