//! The node status and lease half of the kubelet: registration, the Lease
//! renewals, and the Node status sync (upstream pkg/kubelet/kubelet_node_status.go
//! and pkg/kubelet/nodelease).

use super::*;

impl Kubelet {
    pub(super) fn conditions(&self, now: SimTime) -> Vec<NodeCondition> {
        let keep = |t: &'static str, status: &'static str| {
            self.posted_conditions
                .iter()
                .find(|c| c.type_ == t && c.status == status)
                .map(|c| c.last_transition)
                .unwrap_or(now)
        };
        let c = |type_, status, reason, message| NodeCondition {
            type_,
            status,
            last_heartbeat: now,
            last_transition: keep(type_, status),
            reason,
            message,
        };
        vec![
            c(
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            c(
                "DiskPressure",
                "False",
                "KubeletHasNoDiskPressure",
                "kubelet has no disk pressure",
            ),
            c(
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            c(
                "Ready",
                "True",
                "KubeletReady",
                "kubelet is posting ready status",
            ),
        ]
    }

    pub(super) fn node_images(&self) -> Vec<NodeImage> {
        self.images
            .iter()
            .map(|i| NodeImage {
                names: vec![i.clone()],
                size_bytes: self.image_size(i) as i64,
            })
            .collect()
    }

    pub(super) fn image_size(&self, image: &str) -> u64 {
        self.cfg
            .image_sizes
            .get(image)
            .copied()
            .unwrap_or(self.cfg.default_image_size)
    }

    pub(super) fn register(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut body = self.node_template.clone();
        body.conditions = self.conditions(ctx.now);
        body.images = self.node_images();
        let mut meta = Meta {
            name: self.node_name.clone(),
            labels: self.labels.clone(),
            ..Default::default()
        };
        meta.annotations = Arc::new(BTreeMap::from([(
            "node.alpha.kubernetes.io/ttl".to_string(),
            "0".to_string(),
        )]));
        let node = Object {
            kind: Kind::Node,
            meta,
            body: Body::Node(body),
        };
        let mut req = ApiRequest::new(Verb::Create, Kind::Node, "", &self.node_name);
        req.body = Some(Arc::new(node));
        self.client.request(ctx, req, TAG_REGISTER);
    }

    pub(super) fn create_lease(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let meta = Meta {
            name: self.node_name.clone(),
            namespace: "kube-node-lease".into(),
            ..Default::default()
        };
        let lease = LeaseBody {
            holder_identity: Some(self.node_name.clone()),
            lease_duration_seconds: Some(self.cfg.lease_duration_seconds),
            acquire_time: Some(ctx.now),
            renew_time: Some(ctx.now),
            lease_transitions: None,
        };
        let mut req = ApiRequest::new(
            Verb::Create,
            Kind::Lease,
            "kube-node-lease",
            &self.node_name,
        );
        req.body = Some(Arc::new(Object {
            kind: Kind::Lease,
            meta,
            body: Body::Lease(lease),
        }));
        self.client.request(ctx, req, TAG_LEASE_CREATE);
    }

    pub(super) fn renew_lease(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        let mut req = ApiRequest::new(Verb::Patch, Kind::Lease, "kube-node-lease", &self.node_name);
        req.patch = Some(PatchOp::LeaseRenew {
            holder: self.node_name.clone(),
            renew: ctx.now,
            duration_seconds: self.cfg.lease_duration_seconds,
        });
        self.client.request(ctx, req, TAG_LEASE_RENEW);
    }

    /// Every `nodeStatusUpdateFrequency`: read the Node as the apiserver has
    /// it (upstream's GET with resourceVersion 0, served from the watch
    /// cache), then patch the status if it differs from what the kubelet
    /// sees or the report interval has passed. Comparing with the live
    /// object, not with what was last posted, is what brings a node back to
    /// Ready within one period after the node lifecycle controller set it
    /// Unknown.
    pub(super) fn sync_status(&mut self, ctx: &mut Ctx<'_, Payload, World>) {
        if !self.registered {
            return;
        }
        self.status_sync_started = ctx.now;
        let req = ApiRequest::new(Verb::Get, Kind::Node, "", &self.node_name);
        self.client.request(ctx, req, TAG_STATUS_GET);
    }

    pub(super) fn patch_status_if_needed(
        &mut self,
        ctx: &mut Ctx<'_, Payload, World>,
        live: &Object,
    ) {
        let conditions = self.conditions(ctx.now);
        let live = live
            .as_node()
            .map(|n| n.conditions.as_slice())
            .unwrap_or(&[]);
        let changed = conditions.len() != live.len()
            || conditions.iter().any(|c| {
                live.iter()
                    .find(|l| l.type_ == c.type_)
                    .is_none_or(|l| l.status != c.status)
            });
        let due = self
            .last_status_post
            .is_none_or(|t| self.status_sync_started.since(t) >= self.cfg.status_report);
        if !(changed || due) {
            return;
        }
        // Measured from the start of the sync, as upstream's loop (sliding,
        // period counted after the previous sync ends) never runs two syncs
        // closer than the period: a report frequency equal to the update
        // frequency posts on every tick.
        self.last_status_post = Some(self.status_sync_started);
        self.posted_conditions = conditions.clone();
        let mut req = ApiRequest::new(Verb::Patch, Kind::Node, "", &self.node_name);
        req.patch = Some(PatchOp::NodeStatus {
            conditions,
            images: self.node_images(),
        });
        self.client.request(ctx, req, TAG_STATUS);
    }
}
