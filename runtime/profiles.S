/* Built-in seccomp profiles (runtime/profiles/*.json), embedded as NUL-terminated strings
 * so the binary needs no data files at run time. See runtime/seccomp-profiles.c. */
	.section .rodata
	.balign 16
	.global bivy_profile_default_json
	.type bivy_profile_default_json, @object
bivy_profile_default_json:
	.incbin "runtime/profiles/default.json"
	.byte 0
	.size bivy_profile_default_json, . - bivy_profile_default_json

/* no executable stack */
	.section .note.GNU-stack,"",@progbits
