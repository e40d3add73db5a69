//! Account: credits, activity, generations and the organization's members.

use super::Call;
use crate::Client;
use crate::error::ClientError;
use crate::types::activity::{ActivityParams, ActivityRow};
use crate::types::credits::Credits;
use crate::types::generation::Generation;
use crate::types::org::OrgMember;
use crate::types::{Page, Pagination};
impl Client {
    /// `GET /credits`. Cached.
    pub async fn credits(&self) -> Result<Credits, ClientError> {
        self.call_data(Call::get("/credits")).await
    }

    /// `GET /activity`: rows of the last 30 completed UTC days. Never cached.
    pub async fn activity(&self, params: &ActivityParams) -> Result<Vec<ActivityRow>, ClientError> {
        self.call_data(Call::get("/activity").query(params.query()))
            .await
    }

    /// `GET /generation?id=…`. Never cached (the record may still be filling in).
    pub async fn generation(&self, id: &str) -> Result<Generation, ClientError> {
        self.call_data(Call::get("/generation").query(vec![("id", id.to_owned())]))
            .await
    }

    /// `GET /organization/members`.
    pub async fn organization_members(
        &self,
        page: &Pagination,
    ) -> Result<Page<OrgMember>, ClientError> {
        self.call(Call::get("/organization/members").query(page.query()))
            .await
    }
}
