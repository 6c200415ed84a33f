#!/usr/bin/env bash
# Regenerates the vendored Strimzi schemas (*.v1.json here) from a Strimzi release's
# published jars: io.strimzi:api (the CRD model) and io.strimzi:crd-generator, run with
# the arguments Strimzi's own api/pom.xml gives it for the install CRDs. Needs Maven and
# Java 21+ (JAVA=/path/to/java when the default one is older).
set -euo pipefail
cd "$(dirname "$0")"
java=${JAVA:-java}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mvn -q -B -f pom.xml dependency:copy-dependencies -DoutputDirectory="$work/libs"
"$java" -cp "$work/libs/*" io.strimzi.crdgenerator.CrdGenerator \
  --label app:strimzi --label strimzi.io/crd-install:true --target-kube 1.16+ \
  --crd-api-version v1 --api-versions v1 --storage-version v1 --yaml \
  io.strimzi.api.kafka.model.kafka.Kafka="$work/040-Crd-kafka.yaml" \
  io.strimzi.api.kafka.model.topic.KafkaTopic="$work/043-Crd-kafkatopic.yaml" \
  io.strimzi.api.kafka.model.nodepool.KafkaNodePool="$work/045-Crd-kafkanodepool.yaml" \
  io.strimzi.api.kafka.model.user.KafkaUser="$work/044-Crd-kafkauser.yaml"
version=$(sed -n 's:.*<strimzi.version>\(.*\)</strimzi.version>.*:\1:p' pom.xml)
python3 extract.py "$version" "$work"/0*-Crd-*.yaml
