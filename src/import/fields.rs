//! The names logs give their columns, so users rarely need `--loss-col`.

/// What a column (or JSON key) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Step,
    Epoch,
    Batch,
    Loss,
    Lr,
    BatchSize,
    ValLoss,
    ValAccuracy,
    TrainLossEval,
}

impl Role {
    /// Spellings in order of preference, lower case.
    fn spellings(self) -> &'static [&'static str] {
        match self {
            Role::Step => &[
                "step",
                "global_step",
                "iteration",
                "iter",
                "it",
                "steps",
                "train/global_step",
                "trainer/global_step",
            ],
            Role::Epoch => &["epoch", "epochs", "train/epoch"],
            Role::Batch => &["batch", "batch_idx", "batch_index"],
            Role::Loss => &[
                "loss",
                "train_loss",
                "training_loss",
                "train/loss",
                "loss/train",
                "train/loss_step",
                "train_loss_step",
            ],
            Role::Lr => &["lr", "learning_rate", "train/lr", "train/learning_rate"],
            Role::BatchSize => &["batch_size", "bs"],
            Role::ValLoss => &[
                "val_loss",
                "valid_loss",
                "validation_loss",
                "eval_loss",
                "val/loss",
                "valid/loss",
                "validation/loss",
                "eval/loss",
                "loss/val",
                "loss/valid",
                "loss/validation",
            ],
            Role::ValAccuracy => &[
                "val_accuracy",
                "val_acc",
                "valid_accuracy",
                "validation_accuracy",
                "eval_accuracy",
                "eval_acc",
                "val/accuracy",
                "val/acc",
                "eval/accuracy",
            ],
            Role::TrainLossEval => &["train_loss_eval", "train_eval_loss"],
        }
    }

    /// The canonical name, for messages.
    pub(crate) fn name(self) -> &'static str {
        self.spellings()[0]
    }
}

/// Finds the column for `role` among `names`: the override if given, else the
/// first known spelling present. Case-insensitive.
pub(crate) fn find<S: AsRef<str>>(
    names: &[S],
    role: Role,
    override_name: Option<&str>,
) -> Option<usize> {
    let position = |wanted: &str| {
        names
            .iter()
            .position(|n| n.as_ref().trim().eq_ignore_ascii_case(wanted))
    };
    match override_name {
        Some(name) => position(name.trim()),
        None => role.spellings().iter().find_map(|s| position(s)),
    }
}

/// Like [`find`], for a val file: its plain `loss` and `accuracy` are the validation ones.
pub(crate) fn find_in_val_file<S: AsRef<str>>(names: &[S], role: Role) -> Option<usize> {
    find(names, role, None).or_else(|| match role {
        Role::ValLoss => find(names, Role::Loss, None),
        Role::ValAccuracy => find(names, Role::ValAccuracy, Some("accuracy")),
        _ => None,
    })
}
