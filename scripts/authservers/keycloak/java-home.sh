#!/bin/sh
# Prints the home of the first JDK of version 21 or later: JAVA_HOME, then those
# under /usr/lib/jvm. Keycloak 26 needs one; the machine's default java may be older.
for j in "$JAVA_HOME" /usr/lib/jvm/*; do
	[ -n "$j" ] && [ -x "$j/bin/java" ] || continue
	v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$j/release" 2>/dev/null)
	if [ "${v:-0}" -ge 21 ]; then
		echo "$j"
		exit 0
	fi
done
exit 1
