//! Flux for the GitOps tests: a Git repository served over smart HTTP (`git http-backend` behind
//! a small CGI bridge), Flux's CRDs from the Go modules `hack/flux` pins, and source-controller
//! and kustomize-controller (built by `hack/tools.sh`) as host processes, each under the RBAC of
//! its own `config/rbac` and watching only the test's namespace.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;

use crate::harness::kubectl;
use crate::support;

const FLUX_MODULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/flux");
pub const FLUX_NAMESPACE: &str = "flux-system";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=tenantline e2e",
            "-c",
            "user.email=e2e@tenantline.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git on PATH");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A bare repository `tenants.git` served over HTTP, and a work tree to commit to it from.
pub struct GitServer {
    pub addr: SocketAddr,
    pub work: PathBuf,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl GitServer {
    pub async fn start(root: &Path) -> Self {
        let _ = std::fs::remove_dir_all(root);
        let bare = root.join("repos/tenants.git");
        let work = root.join("work");
        std::fs::create_dir_all(&bare).unwrap();
        std::fs::create_dir_all(&work).unwrap();
        git(&bare, &["init", "--bare", "-q", "-b", "main"]);
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);

        let project_root = root.join("repos");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, addr) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready.send(listener.local_addr().unwrap()).unwrap();
                let app =
                    axum::Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                        let root = project_root.clone();
                        async move { http_backend(&root, method, uri, headers, body).await }
                    });
                tokio::select! { _ = axum::serve(listener, app) => {}, _ = stopped => {} }
            });
        });
        Self { addr: addr.await.unwrap(), work, _stop: stop }
    }

    pub fn url(&self) -> String {
        format!("http://{}/tenants.git", self.addr)
    }

    /// Commit the work tree as it is and push; returns the commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(&self.work, &["commit", "-q", "--allow-empty", "-m", message]);
        git(&self.work, &["push", "-q", "origin", "main"]);
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// One request through `git http-backend` (CGI): upload-pack only, which is all Flux needs.
async fn http_backend(root: &Path, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git http-backend");
    let mut stdin = child.stdin.take().unwrap();
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await.unwrap();
    writer.await.unwrap();
    // CGI: headers, a blank line, the body.
    let split = out.stdout.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    let split = split.or_else(|| out.stdout.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, len)) = split else {
        return Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(String::from_utf8_lossy(&out.stderr).into_owned()))
            .unwrap();
    };
    let mut response = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(&out.stdout[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("status") {
            let code = value.trim().split(' ').next().unwrap_or("500").parse().unwrap_or(500);
            response = response.status(code);
        } else {
            response = response.header(name.trim(), value.trim());
        }
    }
    response.body(Body::from(out.stdout[at + len..].to_vec())).unwrap()
}

/// The directory of `module` in the Go module cache, as `hack/flux` pins it.
pub fn module_dir(module: &str) -> PathBuf {
    module_dir_in(Path::new(FLUX_MODULE), module)
}

/// The directory of `module` in the Go module cache, as the Go module in `hack_module` pins it.
pub fn module_dir_in(hack_module: &Path, module: &str) -> PathBuf {
    let out = Command::new("go")
        .args(["list", "-m", "-f", "{{.Dir}}", module])
        .current_dir(hack_module)
        .output()
        .expect("go on PATH");
    assert!(out.status.success(), "go list -m {module}: {}", String::from_utf8_lossy(&out.stderr));
    let dir = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    if !dir.exists() {
        // Not downloaded yet on this machine (the binaries may come from a cache).
        let out = Command::new("go").args(["mod", "download", module]).current_dir(hack_module).output().unwrap();
        assert!(out.status.success(), "go mod download {module}: {}", String::from_utf8_lossy(&out.stderr));
    }
    dir
}

/// Server-side apply every CRD of `dir` and wait until they are served.
pub fn install_crds_from(dir: &Path) {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "yaml")) {
        let yaml = std::fs::read_to_string(f).unwrap();
        if !yaml.contains("kind: CustomResourceDefinition") {
            continue; // a kustomization.yaml
        }
        let out = kubectl(
            &["apply", "--server-side", "--force-conflicts", "--field-manager=tenantline-e2e", "-f", "-"],
            &yaml,
        );
        assert!(out.status.success(), "{}: {}", f.display(), String::from_utf8_lossy(&out.stderr));
        // kubectl wait fails at once, rather than waiting, while a new CRD has no conditions yet.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let out = kubectl(&["wait", "--for=condition=Established", "--timeout=60s", "-f", "-"], &yaml);
            if out.status.success() {
                break;
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(std::time::Instant::now() < deadline, "{} not established: {stderr}", f.display());
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

static FLUX_CRDS: OnceCell<()> = OnceCell::const_new();

/// source-controller's and kustomize-controller's CRDs, from their modules' `config/crd/bases`.
pub async fn install_flux_crds() {
    FLUX_CRDS
        .get_or_init(|| async {
            for module in ["github.com/fluxcd/source-controller", "github.com/fluxcd/kustomize-controller"] {
                install_crds_from(&module_dir(module).join("config/crd/bases"));
            }
        })
        .await;
}

/// `config/rbac` of a controller's module, rendered by kustomize, bound to ServiceAccount `sa` in
/// flux-system (the manifests bind `system/default`, which their `config/default` rewrites).
fn apply_rbac(module: &str, sa: &str) {
    let dir = module_dir(module).join("config/rbac");
    let out = kubectl(&["kustomize", dir.to_str().unwrap()], "");
    assert!(out.status.success(), "kustomize {}: {}", dir.display(), String::from_utf8_lossy(&out.stderr));
    let yaml = String::from_utf8(out.stdout).unwrap();
    let mut items = Vec::new();
    for doc in yaml.split("\n---\n").filter(|d| !d.trim().is_empty()) {
        let mut v: Value = serde_saphyr::from_str(doc).unwrap();
        if let Some(subjects) = v.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects {
                if s["kind"] == "ServiceAccount" {
                    s["name"] = json!(sa);
                    s["namespace"] = json!(FLUX_NAMESPACE);
                }
            }
        }
        items.push(v);
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items});
    let out =
        kubectl(&["apply", "--server-side", "--force-conflicts", "-n", FLUX_NAMESPACE, "-f", "-"], &list.to_string());
    assert!(out.status.success(), "{module} RBAC: {}", String::from_utf8_lossy(&out.stderr));
}

static FLUX_IDENTITIES: OnceCell<(PathBuf, PathBuf)> = OnceCell::const_new();

/// Kubeconfigs for the two controllers' ServiceAccounts, with exactly their manifests' rights.
async fn identities(client: &kube::Client) -> (PathBuf, PathBuf) {
    FLUX_IDENTITIES
        .get_or_init(|| async {
            let ns = kubectl(&["create", "namespace", FLUX_NAMESPACE], "");
            assert!(
                ns.status.success() || String::from_utf8_lossy(&ns.stderr).contains("AlreadyExists"),
                "{}",
                String::from_utf8_lossy(&ns.stderr)
            );
            apply_rbac("github.com/fluxcd/source-controller", "source-controller");
            apply_rbac("github.com/fluxcd/kustomize-controller", "kustomize-controller");
            (
                support::service_account_kubeconfig(client, FLUX_NAMESPACE, "source-controller").await,
                support::service_account_kubeconfig(client, FLUX_NAMESPACE, "kustomize-controller").await,
            )
        })
        .await
        .clone()
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// The two controllers, watching only `namespace` (their RUNTIME_NAMESPACE).
pub struct Flux {
    children: Vec<(String, Child)>,
    pub logs: Vec<PathBuf>,
}

impl Flux {
    pub async fn start(client: &kube::Client, namespace: &str) -> Self {
        install_flux_crds().await;
        let (source_kubeconfig, kustomize_kubeconfig) = identities(client).await;
        let dir = std::env::temp_dir().join(format!("tenantline-e2e/{namespace}-flux"));
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let storage = free_addr().to_string();
        let mut flux = Self { children: Vec::new(), logs: Vec::new() };
        let common = |addr: SocketAddr| {
            vec![
                "--watch-all-namespaces=false".to_owned(),
                "--enable-leader-election=false".to_owned(),
                "--log-encoding=console".to_owned(),
                format!("--metrics-addr={}", free_addr()),
                format!("--health-addr={addr}"),
            ]
        };
        let mut source = common(free_addr());
        source.extend([
            format!("--storage-path={}", dir.join("storage").display()),
            format!("--storage-addr={storage}"),
            format!("--storage-adv-addr={storage}"),
        ]);
        flux.spawn("source-controller", &source, &source_kubeconfig, namespace, &dir);
        let mut kustomize = common(free_addr());
        // Flux's default is 30 s: how often a Kustomization whose dependsOn is not Ready yet looks again.
        kustomize.push("--requeue-dependency=5s".to_owned());
        flux.spawn("kustomize-controller", &kustomize, &kustomize_kubeconfig, namespace, &dir);
        flux
    }

    fn spawn(&mut self, name: &str, args: &[String], kubeconfig: &Path, namespace: &str, dir: &Path) {
        let log_path = dir.join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).unwrap();
        let child = Command::new(name)
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("RUNTIME_NAMESPACE", namespace)
            .env("TUF_ROOT", dir.join("sigstore"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{name} (hack/tools.sh builds it into .cache/bin): {e}"));
        self.children.push((name.to_owned(), child));
        self.logs.push(log_path);
    }

    pub fn log_tail(&self, lines: usize) -> String {
        self.logs
            .iter()
            .map(|p| {
                let log = std::fs::read_to_string(p).unwrap_or_default();
                let all: Vec<&str> = log.lines().collect();
                format!("--- {}\n{}", p.display(), all[all.len().saturating_sub(lines)..].join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Flux {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
