//! Labels: global ones, which administrators manage and anyone signed in can see, and project
//! ones, under the project's label permissions; and putting them on artifacts.

use berth_auth::rbac::{self, Policy, Subject};
use berth_db::ListQuery;
pub use berth_db::{LabelRow, LabelScope};

use crate::projects::{ProjectError, ProjectRef, Projects};

/// A label's editable fields, as a request gives them.
pub struct LabelReq<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub color: &'a str,
}

fn validate(req: &LabelReq<'_>) -> Result<(), ProjectError> {
    if req.name.trim().is_empty() || req.name.trim() != req.name || req.name.chars().count() > 128 {
        return Err(ProjectError::Invalid(
            "a label name is 1 to 128 characters without leading or trailing spaces".into(),
        ));
    }
    if req.color.chars().count() > 32 || req.description.chars().count() > 1024 {
        return Err(ProjectError::Invalid("label color or description too long".into()));
    }
    Ok(())
}

impl Projects {
    /// Checks `action` on labels of `scope`: administrators for global labels (anyone signed
    /// in may read them), the project's label permissions otherwise.
    async fn label_access(
        &self,
        subject: &Subject,
        scope: LabelScope,
        action: rbac::Action,
    ) -> Result<(), ProjectError> {
        match scope {
            LabelScope::Global => {
                if subject.is_anonymous() {
                    return Err(ProjectError::Unauthorized);
                }
                let reading = matches!(action, rbac::Action::Read | rbac::Action::List);
                if reading || Policy::allows_system(subject, rbac::Resource::Label, action) {
                    Ok(())
                } else {
                    Err(ProjectError::Forbidden(format!("label:{action} on global labels is for administrators")))
                }
            }
            LabelScope::Project(id) => {
                self.authorized(subject, &ProjectRef::Id(id), rbac::Resource::Label, action).await.map(|_| ())
            }
        }
    }

    pub async fn create_label(
        &self,
        subject: &Subject,
        scope: LabelScope,
        req: &LabelReq<'_>,
    ) -> Result<i64, ProjectError> {
        self.label_access(subject, scope, rbac::Action::Create).await?;
        validate(req)?;
        Ok(self.db.create_label(req.name, req.description, req.color, scope).await?)
    }

    /// A label the caller may act on in the way given.
    async fn label_checked(&self, subject: &Subject, id: i64, action: rbac::Action) -> Result<LabelRow, ProjectError> {
        let label = self.db.label(id).await?.ok_or_else(|| ProjectError::NotFound(format!("label {id}")))?;
        self.label_access(subject, label.scope, action).await?;
        Ok(label)
    }

    pub async fn label(&self, subject: &Subject, id: i64) -> Result<LabelRow, ProjectError> {
        self.label_checked(subject, id, rbac::Action::Read).await
    }

    pub async fn labels(
        &self,
        subject: &Subject,
        scope: LabelScope,
        name: &str,
        query: &ListQuery,
        page: i64,
        size: i64,
    ) -> Result<(Vec<LabelRow>, i64), ProjectError> {
        self.label_access(subject, scope, rbac::Action::List).await?;
        Ok(self.db.list_labels(scope, name, query, size, (page - 1) * size).await?)
    }

    /// Changes name, description and color; scope and project stay.
    pub async fn update_label(&self, subject: &Subject, id: i64, req: &LabelReq<'_>) -> Result<(), ProjectError> {
        self.label_checked(subject, id, rbac::Action::Update).await?;
        validate(req)?;
        if self.db.update_label(id, req.name, req.description, req.color).await? {
            Ok(())
        } else {
            Err(ProjectError::NotFound(format!("label {id}")))
        }
    }

    /// Deletes a label; it comes off every artifact with it.
    pub async fn delete_label(&self, subject: &Subject, id: i64) -> Result<(), ProjectError> {
        self.label_checked(subject, id, rbac::Action::Delete).await?;
        if self.db.delete_label(id).await? { Ok(()) } else { Err(ProjectError::NotFound(format!("label {id}"))) }
    }

    /// Puts a label on an artifact (needs artifact-label:create); the label must be global or
    /// belong to the artifact's project.
    pub async fn add_artifact_label(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        label_id: i64,
    ) -> Result<(), ProjectError> {
        let (_, artifact) = self
            .artifact_checked(
                subject,
                project,
                repository,
                reference,
                rbac::Resource::ArtifactLabel,
                rbac::Action::Create,
            )
            .await?;
        let label =
            self.db.label(label_id).await?.ok_or_else(|| ProjectError::NotFound(format!("label {label_id}")))?;
        if let LabelScope::Project(p) = label.scope
            && p != artifact.project_id
        {
            return Err(ProjectError::Invalid(format!("label {label_id} belongs to another project")));
        }
        Ok(self.db.add_artifact_label(artifact.id, label_id).await?)
    }

    /// Takes a label off an artifact (needs artifact-label:delete).
    pub async fn remove_artifact_label(
        &self,
        subject: &Subject,
        project: &ProjectRef<'_>,
        repository: &str,
        reference: &str,
        label_id: i64,
    ) -> Result<(), ProjectError> {
        let (_, artifact) = self
            .artifact_checked(
                subject,
                project,
                repository,
                reference,
                rbac::Resource::ArtifactLabel,
                rbac::Action::Delete,
            )
            .await?;
        if self.db.remove_artifact_label(artifact.id, label_id).await? {
            Ok(())
        } else {
            Err(ProjectError::NotFound(format!("label {label_id} on artifact {}", artifact.digest)))
        }
    }

    /// The labels on each of the given artifacts, for listings that ask for them.
    pub async fn labels_of(&self, artifact_ids: &[i64]) -> Result<Vec<(i64, LabelRow)>, ProjectError> {
        Ok(self.db.labels_of(artifact_ids).await?)
    }
}
