# Man pages and shell completions of kibaverify (issue 20 item 8), generated from the same clap definitions as its
# parser: crates/kibaverify/examples/kibaverify-man.rs (clap_mangen) writes one page per command and subcommand;
# `kibaverify completion bash|zsh|fish` (clap_complete) prints a completion script.
#   make man              pages into target/man (MAN_DIR=... for another directory); read one with
#                         `man -l target/man/kibaverify-sign.1`
# The Rust test crates/kibaverify/tests/completion_man_version.rs renders every page with groff and `man -l`.
APT_PACKAGES += groff-base man-db
MAN_DIR ?= target/man

.PHONY: man

man:
	rm -f $(MAN_DIR)/kibaverify*.1
	$(CARGO) run -q --locked -p kibaverify --example kibaverify-man -- $(MAN_DIR)
