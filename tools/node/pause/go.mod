// The test bed node's sandbox process (the pod's "pause" container), built by ../build.sh with
// the machine's Go: no image is pulled from a registry.
module github.com/aws-operators/rekognition-operator/tools/node/pause

go 1.24
