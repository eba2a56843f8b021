# Sourced by the scripts: where builds and downloads live, outside the clone, so a second run is
# fast and a fresh clone starts from what a new machine has.
#   RKO_CACHE_DIR     everything below (default ~/.cache/rekognition-operator)
#   CARGO_TARGET_DIR  the cargo build (default $RKO_CACHE_DIR/target)
#   RKO_CARGO_HOME    the scripts' own cargo home: the crates they fetch (default
#                     $RKO_CACHE_DIR/cargo-home). One home for every script: cargo's build cache
#                     records where a crate's sources were, so two homes over one target directory
#                     would rebuild every dependency each time the other was used.
cache=${RKO_CACHE_DIR:-"$HOME/.cache/rekognition-operator"}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-"$cache/target"}
export CARGO_HOME=${RKO_CARGO_HOME:-"$cache/cargo-home"}
mkdir -p "$CARGO_HOME"
# The machine's own cargo settings (a registry mirror, say) still apply; its registry does not.
for config in config.toml config; do
  if [ -f "$HOME/.cargo/$config" ] && [ "$HOME/.cargo" != "$CARGO_HOME" ]; then
    cp "$HOME/.cargo/$config" "$CARGO_HOME/$config"
  fi
done

# One target directory serves every clone, and cargo names a workspace crate's build by the
# crate, not by the clone, and judges it current by file times: a build another clone made later
# than this clone's sources were last touched counts as this clone's, so a test would run that
# checkout's code (an older commit's operator, say). So when the target directory was last used
# by another clone, every file of this one is touched first and its crates are rebuilt from its
# own sources (the dependencies stay built). Not safe for two clones at the same time: give each
# its own CARGO_TARGET_DIR for that.
claim_target_dir() {
  local stamp="$CARGO_TARGET_DIR/.last-clone" here
  here=$(pwd -P)
  mkdir -p "$CARGO_TARGET_DIR"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$here" ]; then
    git ls-files -z --cached --others --exclude-standard | xargs -0 -r touch -c --
    echo "$here" >"$stamp"
  fi
}
