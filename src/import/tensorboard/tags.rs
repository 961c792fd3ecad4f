//! Which scalar tag is the training loss, the learning rate, the validation loss.
//!
//! Each framework names them its own way (`loss`, `train/loss`, `Loss/train`,
//! `train_loss_step`, Keras' `train/epoch_loss`), so known names come first and
//! a "contains loss, is not evaluation" rule catches the rest.

const LOSS: &[&str] = &[
    "loss",
    "train/loss",
    "train_loss",
    "loss/train",
    "training/loss",
    "train/loss_step",
    "train_loss_step",
];
const LR: &[&str] = &[
    "lr",
    "learning_rate",
    "train/lr",
    "train/learning_rate",
    "lr/train",
];
const VAL_LOSS: &[&str] = &[
    "val/loss",
    "eval/loss",
    "val_loss",
    "eval_loss",
    "valid/loss",
    "validation/loss",
    "loss/val",
    "loss/valid",
    "loss/validation",
    "loss/eval",
];
const EPOCH: &[&str] = &["epoch", "train/epoch"];

/// Words that mark a tag as measured off the training set.
const EVAL_WORDS: &[&str] = &[
    "val",
    "valid",
    "validation",
    "eval",
    "evaluation",
    "dev",
    "test",
];
/// The subset of those that are validation, not a final test.
const VAL_WORDS: &[&str] = &["val", "valid", "validation", "eval", "evaluation", "dev"];

fn words(tag: &str) -> impl Iterator<Item = String> + '_ {
    tag.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

fn has_word(tag: &str, set: &[&str]) -> bool {
    words(tag).any(|w| set.contains(&w.as_str()))
}

fn known<'a>(tags: &'a [String], names: &[&str]) -> Option<&'a String> {
    names
        .iter()
        .find_map(|n| tags.iter().find(|t| t.eq_ignore_ascii_case(n)))
}

fn mentions_loss(tag: &str) -> bool {
    tag.to_ascii_lowercase().contains("loss")
}

pub(crate) fn loss(tags: &[String]) -> Option<&String> {
    known(tags, LOSS).or_else(|| {
        tags.iter()
            .find(|t| mentions_loss(t) && !has_word(t, EVAL_WORDS))
    })
}

pub(crate) fn lr(tags: &[String]) -> Option<&String> {
    known(tags, LR).or_else(|| {
        tags.iter().find(|t| {
            let lower = t.to_ascii_lowercase();
            let named = words(t).any(|w| w == "lr") || lower.contains("learning_rate");
            named && !has_word(t, EVAL_WORDS)
        })
    })
}

pub(crate) fn val_loss(tags: &[String]) -> Option<&String> {
    known(tags, VAL_LOSS).or_else(|| {
        tags.iter()
            .find(|t| mentions_loss(t) && has_word(t, VAL_WORDS))
    })
}

pub(crate) fn val_accuracy(tags: &[String]) -> Option<&String> {
    tags.iter()
        .find(|t| t.to_ascii_lowercase().contains("acc") && has_word(t, VAL_WORDS))
}

pub(crate) fn epoch(tags: &[String]) -> Option<&String> {
    known(tags, EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_names_win_over_first_mention() {
        let t = tags(&["aux_loss", "Loss/val", "Loss/train", "lr-AdamW"]);
        assert_eq!(loss(&t).map(String::as_str), Some("Loss/train"));
        assert_eq!(val_loss(&t).map(String::as_str), Some("Loss/val"));
        assert_eq!(lr(&t).map(String::as_str), Some("lr-AdamW"));
    }

    #[test]
    fn keras_run_subfolders_split_train_from_validation() {
        let t = tags(&[
            "validation/epoch_loss",
            "train/epoch_loss",
            "validation/epoch_accuracy",
        ]);
        assert_eq!(loss(&t).map(String::as_str), Some("train/epoch_loss"));
        assert_eq!(
            val_loss(&t).map(String::as_str),
            Some("validation/epoch_loss")
        );
        assert_eq!(
            val_accuracy(&t).map(String::as_str),
            Some("validation/epoch_accuracy")
        );
    }
}
