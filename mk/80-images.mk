# The kibaship image without Docker (issue 16 part 6): scripts/images.sh builds kibaverify, kibaship-step and
# kibaship-webhook static (as the Dockerfile does) into an OCI layout with umoci, and pushes it with skopeo.
#   make images                              target/images/oci, tagged with the workspace version
#   make images IMAGE_PUSH=host:port/kibaship/kibaship:0.1.0 [IMAGE_INSECURE=1]
# crates/step/tests/image_layout.rs checks that its layout, user, entrypoint and labels are the Dockerfile's.
APT_PACKAGES += umoci skopeo ca-certificates
IMAGE_PUSH ?=
IMAGE_INSECURE ?=

.PHONY: images

images: deps
	bash scripts/images.sh $(if $(IMAGE_PUSH),--push $(IMAGE_PUSH)) $(if $(IMAGE_INSECURE),--insecure)
