#!/bin/sh
# Re-fetch the UI's vendored JavaScript from the npm registry, at exactly the pinned versions,
# into cmfgit/ui/static/vendor/ (minified dist files) and vendor/LICENSES/ (their licence texts).
# No build step: the page loads these files as they are. Run from anywhere; needs npm and tar.
#
#   cytoscape        the lineage and pipeline graphs (canvas; stays usable at thousands of nodes)
#   cytoscape-dagre  the layered DAG layout for cytoscape; its dist file bundles @dagrejs/dagre
#                    (the layout algorithm), whose licence is copied too
#   uplot            the step-metric charts (small and fast, canvas)
#
# To update: change a version here, run the script, check the page (tests/test_ui_browser.py), commit.
set -eu

# package@version and the registry's sha512 of its tarball (npm view PKG@VER dist.integrity):
# a tarball that does not match is refused.
PINS="
cytoscape@3.35.0 sha512-sMvBIXiGMnhkCaWz2R06FwF/27MNlS+Tqvi17foO9UhnUg3XGZccKjxsvEqQFAQYMSSZmN5SxYzUYlQ0DOJJ3g==
cytoscape-dagre@4.0.1 sha512-hyNdh8Vp1nwzBcjHnM4c71G81bFhPmQYLXD2HM9AZIvl+8TrMzWEOPW45hF/XOBQiEguPcDQzi6VrXR1XBcXOA==
uplot@1.6.32 sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
@dagrejs/dagre@3.1.3 sha512-X4aUTwOReZvthaZWOVHqlJ52/ZdhZFEM4+Lh/uR4XooUSLE6p71bcy7MPGzYnNUcNh+nj+i/qJQpCMIdQnSmrg==
"

here=$(cd "$(dirname "$0")/.." && pwd)
vendor="$here/cmfgit/ui/static/vendor"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
echo "$PINS" | while read -r pin integrity; do
    [ -n "$pin" ] || continue
    tgz=$(npm pack --silent --registry "${NPM_REGISTRY:-https://registry.npmjs.org/}" "$pin" | tail -n 1)
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 | tr -d '\n')"
    if [ "$got" != "$integrity" ]; then
        echo "vendor-ui.sh: $pin: the tarball's sha512 is $got, not the pinned $integrity" >&2
        exit 1
    fi
done
for tgz in *.tgz; do
    mkdir "${tgz%.tgz}"
    tar xzf "$tgz" -C "${tgz%.tgz}"
done

mkdir -p "$vendor/LICENSES"
rm -f "$vendor"/*.js "$vendor"/*.css "$vendor/LICENSES"/*
cp cytoscape-3.35.0/package/dist/cytoscape.min.js "$vendor/cytoscape.min.js"
cp cytoscape-3.35.0/package/LICENSE "$vendor/LICENSES/cytoscape.txt"
cp cytoscape-dagre-4.0.1/package/dist/cytoscape-dagre.min.js "$vendor/cytoscape-dagre.min.js"
cp cytoscape-dagre-4.0.1/package/LICENSE "$vendor/LICENSES/cytoscape-dagre.txt"
cp dagrejs-dagre-3.1.3/package/LICENSE "$vendor/LICENSES/dagre.txt"
cp uplot-1.6.32/package/dist/uPlot.iife.min.js "$vendor/uPlot.iife.min.js"
cp uplot-1.6.32/package/dist/uPlot.min.css "$vendor/uPlot.min.css"
cp uplot-1.6.32/package/LICENSE "$vendor/LICENSES/uplot.txt"

# The record of what is here (as pip's _vendor/vendor.txt): package, version, file.
cat > "$vendor/vendor.txt" <<TXT
# Vendored by scripts/vendor-ui.sh from the npm registry; do not edit by hand.
cytoscape==3.35.0        cytoscape.min.js
cytoscape-dagre==4.0.1   cytoscape-dagre.min.js  (bundles @dagrejs/dagre; licence: LICENSES/dagre.txt)
uplot==1.6.32            uPlot.iife.min.js uPlot.min.css
TXT
# Source maps are not shipped: drop the comment that points at one.
sed -i 's|//# sourceMappingURL=.*$||' "$vendor"/*.js
echo "vendored into $vendor:"
ls -l "$vendor" "$vendor/LICENSES"
