#!/usr/bin/env bash
# Checks that SimpleSAMLphp 1.19 (Debian's `simplesamlphp` package) can run as the interop
# IdP: php-cli with the xml, dom, mbstring and openssl extensions, and the package's files.
#
#   tests/interop/simplesamlphp/setup.sh   -> last stdout line: SimpleSAMLphp's install dir
#
# It installs nothing itself: scripts/system-deps.sh --test does (scripts/test runs both).
# Everything except the final path goes to stderr; a missing piece exits 1 and says which.
set -euo pipefail

ssp_dir="${SIMPLESAMLPHP_DIR:-/usr/share/simplesamlphp}"
# Debian moves the attribute maps out of the install dir (to /etc); config.php points there.
attributemap_dir="${SIMPLESAMLPHP_ATTRIBUTEMAP_DIR:-/etc/simplesamlphp/attributemap}"

log() { printf 'simplesamlphp-setup: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    log "install it with: bash scripts/system-deps.sh --test"
    exit 1
}

command -v php >/dev/null 2>&1 || die "php not found on PATH (Debian package php-cli)"
for ext in dom xml mbstring openssl session zlib; do
    php -r "exit(extension_loaded('$ext') ? 0 : 1);" 2>/dev/null ||
        die "the PHP extension '$ext' is not loaded (Debian packages php-xml, php-mbstring)"
done
[ -f "$ssp_dir/www/saml2/idp/SSOService.php" ] ||
    die "SimpleSAMLphp is not installed at $ssp_dir (Debian package simplesamlphp)"
[ -f "$attributemap_dir/name2oid.php" ] && [ -f "$attributemap_dir/name2urn.php" ] ||
    die "SimpleSAMLphp's attribute maps are not at $attributemap_dir"
version="$(php -r "require '$ssp_dir/lib/_autoload.php'; echo \SimpleSAML\Configuration::VERSION;" 2>/dev/null || true)"
case "$version" in
    1.19.*) log "SimpleSAMLphp $version, $(php -r 'echo PHP_VERSION;') at $ssp_dir" ;;
    *) die "SimpleSAMLphp 1.19 expected at $ssp_dir, found '${version:-nothing}'" ;;
esac
printf '%s\n' "$ssp_dir"
