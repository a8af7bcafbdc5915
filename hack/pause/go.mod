// The pod sandbox ("pause") image of the local node (see hack/node.sh). Not part of the product.
module tenantline.io/hack/pause

go 1.26.0
