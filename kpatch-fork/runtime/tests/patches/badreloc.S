/* A patch with a relocation type the runtime does not apply (R_X86_64_GOTOFF64). */
	.text
	.globl version_bad
	.type version_bad, @function
version_bad:
	movabs $0, %rax
	.reloc . - 8, R_X86_64_GOTOFF64, version
	ret
	.size version_bad, . - version_bad
	.section .note.GNU-stack,"",@progbits
