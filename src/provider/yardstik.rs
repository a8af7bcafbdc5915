use super::ProviderClients;
use super::http::HttpClient;

pub(super) fn clients(_http: HttpClient) -> ProviderClients {
    todo!("provider engineer")
}
