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
